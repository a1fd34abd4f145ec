//! Generates `OPERATIONS` distinct actions (`op0` .. `opN`), each a small, different
//! piece of string and JSON processing, and the dispatch that keeps them all alive.
//! Deterministic: the same source every build.

use std::fmt::Write as _;

/// Number of generated actions; about 5.7 KB of wasm each (11 MB in all).
const OPERATIONS: u64 = 2_000;

fn main() {
    let mut code = String::new();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        // xorshift64*: fixed seed, so the generated code never changes.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    for op in 0..OPERATIONS {
        let (seed, rotate, mul, key) = (next(), next() % 63 + 1, next() | 1, next() % 997);
        let modulus = next() % 10_000 + 7;
        let sep = [' ', ',', '-', '/', ':', ';', '.', '_'][(next() % 8) as usize];
        writeln!(
            code,
            r#"
#[inline(never)]
fn op{op}(input: &Value) -> Value {{
    let text = input.get("field{field}").and_then(Value::as_str).unwrap_or("default value {op}");
    let mut acc: u64 = {seed};
    for (n, byte) in text.bytes().enumerate() {{
        acc = acc.rotate_left({rotate}).wrapping_mul({mul}).wrapping_add(u64::from(byte) ^ (n as u64).wrapping_mul({key}));
    }}
    let words: Vec<String> = text.split('{sep}').map(|word| format!("w{op}-{{}}-{{}}", word.len(), acc % {modulus})).collect();
    match acc % 5 {{
        0 => json!({{"op": {op}, "kind": "hash", "acc": acc, "words": words}}),
        1 => json!({{"op": {op}, "kind": "sum", "sum": words.iter().map(String::len).sum::<usize>(), "mod": acc % {modulus}}}),
        2 => json!({{"op": {op}, "kind": "upper", "upper": text.to_uppercase(), "first": words.first()}}),
        3 => json!({{"op": {op}, "kind": "reverse", "reversed": text.chars().rev().collect::<String>(), "last": words.last()}}),
        _ => json!({{"op": {op}, "kind": "count", "count": words.len(), "hex": format!("{{acc:x}}")}}),
    }}
}}"#,
            field = op % 17,
        )
        .unwrap();
    }
    code.push_str("\n/// Runs the generated action `name`, if there is one.\nfn dispatch(name: &str, input: &Value) -> Option<Value> {\n    Some(match name {\n");
    for op in 0..OPERATIONS {
        writeln!(code, "        \"op{op}\" => op{op}(input),").unwrap();
    }
    code.push_str("        _ => return None,\n    })\n}\n");
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    std::fs::write(out.join("generated.rs"), code).expect("write generated.rs");
    println!("cargo:rerun-if-changed=build.rs");
}

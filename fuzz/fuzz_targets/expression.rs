//! The branch expression evaluator: a JSON document `{"condition": [...], "context":
//! {...}}` (or a bare condition) is parsed as a condition and evaluated with references
//! resolved in the context, and every operator is applied to the terms of the
//! document's top-level lists (JavaScript's loose comparisons, numbers from strings,
//! dates). Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sluice_runtime::flow::Input;
use sluice_runtime::flow::expression::{Expr, Operator, compare};
use sluice_runtime::flow::reference::{Reference, lookup};
use sluice_runtime::flow::template;

/// A term's value: literals as they are, references and config variables read from
/// `context` (`{"<step>": <results>, "config": {...}}`), templates rendered.
fn resolve(input: &Input, context: &Value) -> Option<Value> {
    match input {
        Input::Value(value) => Some(value.clone()),
        Input::Reference(text) => {
            let reference = Reference::parse(text).ok()?;
            lookup(context.get(&reference.root)?, &reference.path).cloned()
        }
        Input::ConfigVar(key) => context.get("config")?.get(key).cloned(),
        Input::Template(text) => {
            let mut out = String::new();
            for part in template::parse(text).ok()? {
                match part {
                    template::TemplatePart::Text(text) => out.push_str(&text),
                    template::TemplatePart::Reference(reference) => template::append_value(
                        &mut out,
                        context
                            .get(&reference.root)
                            .and_then(|root| lookup(root, &reference.path)),
                    ),
                    template::TemplatePart::ConfigVar(key) => template::append_value(
                        &mut out,
                        context.get("config").and_then(|config| config.get(&key)),
                    ),
                }
            }
            Some(Value::String(out))
        }
        Input::Complex(_) => None,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(document) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let (condition, context) = match (document.get("condition"), document.get("context")) {
        (Some(condition), context) => (condition, context.unwrap_or(&Value::Null)),
        (None, _) => (&document, &Value::Null),
    };
    if let Ok(expr) = Expr::parse(condition) {
        let _ = expr.evaluate::<()>(&mut |input| Ok(resolve(input, context)));
    }
    // Every operator on every pair of terms of each top-level list.
    for list in [condition, context].into_iter().filter_map(Value::as_array) {
        let terms: Vec<&Value> = list.iter().take(8).collect();
        for op in Operator::ALL {
            for left in &terms {
                let _ = compare(op, Some(*left), None);
                for right in &terms {
                    let _ = compare(op, Some(*left), Some(*right));
                }
            }
        }
    }
});

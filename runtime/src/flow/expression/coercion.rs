//! JavaScript's coercions as Prismatic's evaluator applies them: JSON-parsing of
//! string terms, `ToPrimitive`/`ToNumber`/`ToString`, loose and strict equality
//! (lodash's deep `isEqual`), relational comparison and truthiness.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::{Number, Value};

/// Prismatic's `parseValue`: a string that holds a JSON document becomes that document;
/// everything else is left as it is.
pub fn parse_value(term: Option<&Value>) -> Option<Cow<'_, Value>> {
    match term {
        Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
            Ok(parsed) => Some(Cow::Owned(parsed)),
            Err(_) => term.map(Cow::Borrowed),
        },
        other => other.map(Cow::Borrowed),
    }
}

/// The right side of `in`: a string holding a JSON list or object becomes that
/// container; any other string stays the string it is. Prismatic's evaluator parses
/// every JSON string, so a comment whose whole text is `42` (or `true`, `null`)
/// turned into a number and failed the run; here it is searched as text.
pub(super) fn parse_container(term: Option<&Value>) -> Option<Cow<'_, Value>> {
    match term {
        Some(Value::String(text)) if text.trim_start().starts_with(['[', '{']) => parse_value(term),
        other => other.map(Cow::Borrowed),
    }
}

pub(super) fn number_f64(number: &Number) -> f64 {
    number.as_f64().unwrap_or(f64::NAN)
}

/// JavaScript's `typeof x === "object"`: null, lists and objects.
fn is_object_like(value: Option<&Value>) -> bool {
    matches!(
        value,
        Some(Value::Null | Value::Array(_) | Value::Object(_))
    )
}

/// A JavaScript primitive, the result of `ToPrimitive`.
enum Primitive<'a> {
    Undefined,
    Null,
    Bool(bool),
    Number(f64),
    String(Cow<'a, str>),
}

fn to_primitive(value: Option<&Value>) -> Primitive<'_> {
    match value {
        None => Primitive::Undefined,
        Some(Value::Null) => Primitive::Null,
        Some(Value::Bool(flag)) => Primitive::Bool(*flag),
        Some(Value::Number(number)) => Primitive::Number(number_f64(number)),
        Some(Value::String(text)) => Primitive::String(Cow::Borrowed(text)),
        Some(other) => Primitive::String(Cow::Owned(js_string(Some(other)))),
    }
}

fn primitive_to_number(primitive: &Primitive<'_>) -> f64 {
    match primitive {
        Primitive::Undefined => f64::NAN,
        Primitive::Null => 0.0,
        Primitive::Bool(flag) => f64::from(u8::from(*flag)),
        Primitive::Number(number) => *number,
        Primitive::String(text) => string_to_number(text),
    }
}

/// JavaScript's `ToNumber` of a string: whitespace-trimmed decimal, `Infinity`, or
/// `0x`/`0o`/`0b` integers; the empty string is 0; anything else is NaN.
pub fn string_to_number(text: &str) -> f64 {
    let text = text.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    if text.is_empty() {
        return 0.0;
    }
    match text {
        "Infinity" | "+Infinity" => return f64::INFINITY,
        "-Infinity" => return f64::NEG_INFINITY,
        _ => {}
    }
    for (prefix, radix) in [
        ("0x", 16),
        ("0X", 16),
        ("0o", 8),
        ("0O", 8),
        ("0b", 2),
        ("0B", 2),
    ] {
        if let Some(digits) = text.strip_prefix(prefix) {
            if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
                return f64::NAN;
            }
            return digits
                .chars()
                .filter_map(|c| c.to_digit(radix))
                .fold(0.0, |acc, digit| acc * f64::from(radix) + f64::from(digit));
        }
    }
    if is_decimal_literal(text) {
        text.parse().unwrap_or(f64::NAN)
    } else {
        f64::NAN
    }
}

/// `[+-]? (digits [. digits?] | . digits) ([eE] [+-]? digits)?`
fn is_decimal_literal(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut at = 0;
    if matches!(bytes.first(), Some(b'+' | b'-')) {
        at += 1;
    }
    let int_start = at;
    while bytes.get(at).is_some_and(u8::is_ascii_digit) {
        at += 1;
    }
    let mut digits = at - int_start;
    if bytes.get(at) == Some(&b'.') {
        at += 1;
        let frac_start = at;
        while bytes.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        digits += at - frac_start;
    }
    if digits == 0 {
        return false;
    }
    if matches!(bytes.get(at), Some(b'e' | b'E')) {
        at += 1;
        if matches!(bytes.get(at), Some(b'+' | b'-')) {
            at += 1;
        }
        let exp_start = at;
        while bytes.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        if at == exp_start {
            return false;
        }
    }
    at == bytes.len()
}

/// JavaScript's `Number.prototype.toString()` for a double.
pub fn js_number_to_string(number: f64) -> String {
    if number.is_nan() {
        return "NaN".into();
    }
    if number == 0.0 {
        return "0".into();
    }
    if number.is_infinite() {
        return if number > 0.0 {
            "Infinity"
        } else {
            "-Infinity"
        }
        .into();
    }
    if number < 0.0 {
        return format!("-{}", js_number_to_string(-number));
    }
    // `{:e}` gives the shortest digits that round-trip, like JavaScript.
    let formatted = format!("{number:e}");
    let (mantissa, exponent) = formatted.split_once('e').unwrap_or((&formatted, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let k = digits.len() as i64;
    let n = exponent.parse::<i64>().unwrap_or(0) + 1;
    if k <= n && n <= 21 {
        format!("{digits}{}", "0".repeat((n - k) as usize))
    } else if 0 < n && n <= 21 {
        format!("{}.{}", &digits[..n as usize], &digits[n as usize..])
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let sign = if n - 1 < 0 { '-' } else { '+' };
        let exp = (n - 1).abs();
        if k == 1 {
            format!("{digits}e{sign}{exp}")
        } else {
            format!("{}.{}e{sign}{exp}", &digits[..1], &digits[1..])
        }
    }
}

/// A JSON number as text: integers exactly, other numbers as JavaScript prints them.
pub fn number_to_string(number: &Number) -> String {
    if number.is_f64() {
        js_number_to_string(number_f64(number))
    } else {
        number.to_string()
    }
}

/// JavaScript's `ToString` (`${value}`): lists are joined with commas, objects are
/// `[object Object]`, a missing value is `undefined`.
pub fn js_string(value: Option<&Value>) -> String {
    match value {
        None => "undefined".into(),
        Some(Value::Null) => "null".into(),
        Some(Value::Bool(flag)) => flag.to_string(),
        Some(Value::Number(number)) => number_to_string(number),
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::Null => String::new(),
                other => js_string(Some(other)),
            })
            .collect::<Vec<_>>()
            .join(","),
        Some(Value::Object(_)) => "[object Object]".into(),
    }
}

/// JavaScript's `==`.
fn loose_equal(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (None | Some(Value::Null), None | Some(Value::Null)) => true,
        (None | Some(Value::Null), _) | (_, None | Some(Value::Null)) => false,
        (Some(x), Some(y)) => match (x, y) {
            (Value::Array(_) | Value::Object(_), Value::Array(_) | Value::Object(_)) => false,
            (Value::Number(p), Value::Number(q)) => number_f64(p) == number_f64(q),
            (Value::String(p), Value::String(q)) => p == q,
            (Value::Bool(p), Value::Bool(q)) => p == q,
            (Value::Bool(p), _) => loose_equal(Some(&Value::from(u8::from(*p))), b),
            (_, Value::Bool(q)) => loose_equal(a, Some(&Value::from(u8::from(*q)))),
            (Value::Number(p), Value::String(s)) | (Value::String(s), Value::Number(p)) => {
                number_f64(p) == string_to_number(s)
            }
            // One side is a list or an object, the other a number or a string.
            (primitive @ (Value::Number(_) | Value::String(_)), object)
            | (object, primitive @ (Value::Number(_) | Value::String(_))) => {
                let text = js_string(Some(object));
                match primitive {
                    Value::Number(number) => number_f64(number) == string_to_number(&text),
                    Value::String(other) => *other == text,
                    _ => false,
                }
            }
            // Null was handled above.
            _ => false,
        },
    }
}

/// Prismatic's `isEqual`: `left == right`, or lodash's deep equality where leaves
/// compare with `==`.
pub(super) fn is_equal(a: Option<&Value>, b: Option<&Value>) -> bool {
    if loose_equal(a, b) {
        return true;
    }
    match (a, b) {
        (Some(x), Some(y)) if is_object_like(a) || is_object_like(b) => deep_equal(x, y, true),
        _ => false,
    }
}

/// lodash's `baseIsEqual`; with `loose`, leaves that are not objects compare with `==`
/// (the customizer Prismatic passes), else with `===`.
fn deep_equal(x: &Value, y: &Value, loose: bool) -> bool {
    match (x, y) {
        (Value::Array(p), Value::Array(q)) => {
            p.len() == q.len() && p.iter().zip(q).all(|(x, y)| leaf_equal(x, y, loose))
        }
        (Value::Object(p), Value::Object(q)) => {
            p.len() == q.len()
                && p.iter()
                    .all(|(key, x)| q.get(key).is_some_and(|y| leaf_equal(x, y, loose)))
        }
        _ => primitive_strict_equal(x, y),
    }
}

fn leaf_equal(x: &Value, y: &Value, loose: bool) -> bool {
    if loose && !is_object_like(Some(x)) && !is_object_like(Some(y)) {
        loose_equal(Some(x), Some(y))
    } else {
        deep_equal(x, y, loose)
    }
}

pub(super) fn primitive_strict_equal(x: &Value, y: &Value) -> bool {
    match (x, y) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(p), Value::Bool(q)) => p == q,
        (Value::Number(p), Value::Number(q)) => number_f64(p) == number_f64(q),
        (Value::String(p), Value::String(q)) => p == q,
        _ => false,
    }
}

/// `left === right || lodash.isEqual(left, right)`.
pub(super) fn strict_equal(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(x), Some(y)) => deep_equal(x, y, false),
        _ => false,
    }
}

/// JavaScript's `a < b`: `None` is `undefined` (a NaN was involved), which makes every
/// relational operator false.
pub(super) fn less_than(a: Option<&Value>, b: Option<&Value>) -> Option<bool> {
    let (pa, pb) = (to_primitive(a), to_primitive(b));
    if let (Primitive::String(x), Primitive::String(y)) = (&pa, &pb) {
        // JavaScript compares strings by UTF-16 code units.
        return Some(x.encode_utf16().cmp(y.encode_utf16()) == Ordering::Less);
    }
    let (x, y) = (primitive_to_number(&pa), primitive_to_number(&pb));
    if x.is_nan() || y.is_nan() {
        return None;
    }
    Some(x < y)
}

pub(super) fn truthy(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::Bool(flag)) => *flag,
        Some(Value::Number(number)) => {
            let n = number_f64(number);
            n != 0.0 && !n.is_nan()
        }
        Some(Value::String(text)) => !text.is_empty(),
        Some(Value::Array(_) | Value::Object(_)) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_like_javascript() {
        for (number, text) in [
            (5.0, "5"),
            (5.2, "5.2"),
            (0.1, "0.1"),
            (-1.5, "-1.5"),
            (1e21, "1e+21"),
            (123456789012345680000.0, "123456789012345680000"),
            (1e-7, "1e-7"),
            (1.5e-7, "1.5e-7"),
            (0.000001, "0.000001"),
            (100.0, "100"),
        ] {
            assert_eq!(js_number_to_string(number), text, "{number}");
        }
    }

    #[test]
    fn strings_convert_to_numbers_like_javascript() {
        for (text, number) in [
            ("", 0.0),
            ("  42 ", 42.0),
            ("5.3", 5.3),
            (".5", 0.5),
            ("1e3", 1000.0),
            ("0x1F", 31.0),
            ("-Infinity", f64::NEG_INFINITY),
        ] {
            assert_eq!(string_to_number(text), number, "{text:?}");
        }
        for text in ["abc", "1,2", "inf", "NaN", "1e", "0x", "--1", "."] {
            assert!(string_to_number(text).is_nan(), "{text:?}");
        }
    }
}

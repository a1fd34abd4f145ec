//! The operators of seed §3.1 applied to two terms: which coercion each uses, and the
//! ones with rules of their own (`in`, emptiness, `isTrue`, existence).

use std::borrow::Cow;

use serde_json::Value;

use super::coercion::{
    is_equal, js_string, less_than, number_f64, parse_container, parse_value,
    primitive_strict_equal, strict_equal, truthy,
};
use super::dates::to_date_ms;
use super::{ExpressionError, Operator};

/// Applies `op` to terms as Prismatic's evaluator does (seed §3.1): each term that is
/// a string holding JSON is parsed first (`"5.2"` → 5.2), then JavaScript's loose
/// semantics apply. `right` is ignored by unary operators.
pub fn compare(
    op: Operator,
    left: Option<&Value>,
    right: Option<&Value>,
) -> Result<bool, ExpressionError> {
    use Operator as O;
    match op {
        O::Equal => Ok(is_equal(
            parse_value(left).as_deref(),
            parse_value(right).as_deref(),
        )),
        O::NotEqual => Ok(!is_equal(
            parse_value(left).as_deref(),
            parse_value(right).as_deref(),
        )),
        O::GreaterThan => Ok(less_than(
            parse_value(right).as_deref(),
            parse_value(left).as_deref(),
        ) == Some(true)),
        O::GreaterThanOrEqual => Ok(less_than(
            parse_value(left).as_deref(),
            parse_value(right).as_deref(),
        ) == Some(false)),
        O::LessThan => Ok(
            less_than(parse_value(left).as_deref(), parse_value(right).as_deref()) == Some(true),
        ),
        O::LessThanOrEqual => Ok(less_than(
            parse_value(right).as_deref(),
            parse_value(left).as_deref(),
        ) == Some(false)),
        O::In => contains(parse_container(right).as_deref(), left),
        O::NotIn => contains(parse_container(right).as_deref(), left).map(|found| !found),
        O::IsEmpty => emptiness(left).map(|len| len == 0),
        O::IsNotEmpty => emptiness(left).map(|len| len > 0),
        // Compared as given: "exactly" means no coercion at all, not even the JSON
        // parsing of strings (so `"5"` does not exactly match `5`, as documented).
        O::ExactlyMatches => Ok(strict_equal(left, right)),
        O::DoesNotExactlyMatch => Ok(!strict_equal(left, right)),
        O::StartsWith => Ok(js_string(parse_value(right).as_deref())
            .starts_with(&js_string(parse_value(left).as_deref()))),
        O::DoesNotStartWith => Ok(!js_string(parse_value(right).as_deref())
            .starts_with(&js_string(parse_value(left).as_deref()))),
        O::EndsWith => Ok(js_string(parse_value(right).as_deref())
            .ends_with(&js_string(parse_value(left).as_deref()))),
        O::DoesNotEndWith => Ok(!js_string(parse_value(right).as_deref())
            .ends_with(&js_string(parse_value(left).as_deref()))),
        O::DateTimeAfter => Ok(to_date_ms(left)? > to_date_ms(right)?),
        O::DateTimeBefore => Ok(to_date_ms(left)? < to_date_ms(right)?),
        O::DateTimeSame => Ok(to_date_ms(left)? == to_date_ms(right)?),
        O::IsTrue => Ok(is_true(left)),
        O::IsFalse => Ok(!is_true(left)),
        O::DoesNotExist => Ok(does_not_exist(left)),
        O::Exists => Ok(!does_not_exist(left)),
    }
}

/// `in`: the right side (a list or object given as JSON text parsed first) is a
/// string (substring test), a list (membership, with `===`: `"2"` is not in
/// `[1, 2, 3]`, as documented) or an object (key membership). The left side is used
/// as given.
fn contains(container: Option<&Value>, containee: Option<&Value>) -> Result<bool, ExpressionError> {
    match container {
        Some(Value::String(text)) => Ok(text.contains(js_string(containee).as_str())),
        Some(Value::Array(items)) => Ok(match containee {
            None => false,
            Some(wanted) => items
                .iter()
                .any(|item| primitive_strict_equal(item, wanted)),
        }),
        Some(Value::Object(map)) => Ok(map.contains_key(&js_string(containee))),
        other => Err(ExpressionError(format!(
            "`in` needs a string, a list or an object on the right, got {}",
            describe(other)
        ))),
    }
}

/// The length a `isEmpty`/`isNotEmpty` term has: a list (possibly given as JSON
/// text) or a string.
fn emptiness(term: Option<&Value>) -> Result<usize, ExpressionError> {
    if let Some(Cow::Owned(Value::Array(items)) | Cow::Borrowed(Value::Array(items))) =
        parse_value(term).as_ref()
    {
        return Ok(items.len());
    }
    match term {
        Some(Value::String(text)) => Ok(text.len()),
        other => Err(ExpressionError(format!(
            "please provide an array or string, got {}",
            describe(other)
        ))),
    }
}

/// `isTrue`: t, true, y, yes (any case) are true; f, false, n, no are false; anything
/// else by JavaScript truthiness.
fn is_true(term: Option<&Value>) -> bool {
    let parsed = parse_value(term);
    if let Some(Value::String(text)) = parsed.as_deref() {
        match text.to_lowercase().as_str() {
            "t" | "true" | "y" | "yes" => return true,
            "f" | "false" | "n" | "no" => return false,
            _ => {}
        }
    }
    truthy(parsed.as_deref())
}

/// `doesNotExist`: undefined, null, 0, false and "" (NaN cannot occur in JSON).
fn does_not_exist(term: Option<&Value>) -> bool {
    match parse_value(term).as_deref() {
        None | Some(Value::Null) | Some(Value::Bool(false)) => true,
        Some(Value::Number(number)) => number_f64(number) == 0.0,
        Some(Value::String(text)) => text.is_empty(),
        _ => false,
    }
}

pub(super) fn describe(value: Option<&Value>) -> String {
    match value {
        None => "nothing (undefined)".into(),
        Some(Value::Null) => "null".into(),
        Some(Value::Bool(flag)) => format!("the boolean {flag}"),
        Some(Value::Number(number)) => format!("the number {number}"),
        Some(Value::String(text)) => format!("the string {text:?}"),
        Some(Value::Array(_)) => "a list".into(),
        Some(Value::Object(_)) => "an object".into(),
    }
}

//! Branch conditions: the operator table of seed §3.1 (`equal` … `exists`, `and`/`or`)
//! with the JavaScript semantics Prismatic's evaluator has (JSON-parsing of string
//! terms, loose `==`, relational comparison, truthiness), and the condition tree.
//!
//! Terms are JSON values, or `None` for a reference that resolved to nothing
//! (JavaScript's `undefined`). Where the seed's documented examples and Prismatic's
//! SDK disagree, the documented examples win; `docs/flows.md` lists each case.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

use serde_json::{Number, Value};

use super::definition::Input;

/// A comparison operator (seed §3.1), by its key in the definition file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    Equal,
    NotEqual,
    GreaterThan,
    GreaterThanOrEqual,
    LessThan,
    LessThanOrEqual,
    In,
    NotIn,
    IsEmpty,
    IsNotEmpty,
    ExactlyMatches,
    DoesNotExactlyMatch,
    StartsWith,
    DoesNotStartWith,
    EndsWith,
    DoesNotEndWith,
    DateTimeAfter,
    DateTimeBefore,
    DateTimeSame,
    IsTrue,
    IsFalse,
    DoesNotExist,
    Exists,
}

impl Operator {
    /// Every operator, in the order of the seed's table.
    pub const ALL: [Operator; 23] = [
        Operator::Equal,
        Operator::NotEqual,
        Operator::GreaterThan,
        Operator::GreaterThanOrEqual,
        Operator::LessThan,
        Operator::LessThanOrEqual,
        Operator::In,
        Operator::NotIn,
        Operator::IsEmpty,
        Operator::IsNotEmpty,
        Operator::ExactlyMatches,
        Operator::DoesNotExactlyMatch,
        Operator::StartsWith,
        Operator::DoesNotStartWith,
        Operator::EndsWith,
        Operator::DoesNotEndWith,
        Operator::DateTimeAfter,
        Operator::DateTimeBefore,
        Operator::DateTimeSame,
        Operator::IsTrue,
        Operator::IsFalse,
        Operator::DoesNotExist,
        Operator::Exists,
    ];

    /// The key used in definitions (`equal`, `startsWith`, ...).
    pub fn key(self) -> &'static str {
        match self {
            Operator::Equal => "equal",
            Operator::NotEqual => "notEqual",
            Operator::GreaterThan => "greaterThan",
            Operator::GreaterThanOrEqual => "greaterThanOrEqual",
            Operator::LessThan => "lessThan",
            Operator::LessThanOrEqual => "lessThanOrEqual",
            Operator::In => "in",
            Operator::NotIn => "notIn",
            Operator::IsEmpty => "isEmpty",
            Operator::IsNotEmpty => "isNotEmpty",
            Operator::ExactlyMatches => "exactlyMatches",
            Operator::DoesNotExactlyMatch => "doesNotExactlyMatch",
            Operator::StartsWith => "startsWith",
            Operator::DoesNotStartWith => "doesNotStartWith",
            Operator::EndsWith => "endsWith",
            Operator::DoesNotEndWith => "doesNotEndWith",
            Operator::DateTimeAfter => "dateTimeAfter",
            Operator::DateTimeBefore => "dateTimeBefore",
            Operator::DateTimeSame => "dateTimeSame",
            Operator::IsTrue => "isTrue",
            Operator::IsFalse => "isFalse",
            Operator::DoesNotExist => "doesNotExist",
            Operator::Exists => "exists",
        }
    }

    /// The operator with this key.
    pub fn from_key(key: &str) -> Option<Operator> {
        Operator::ALL.into_iter().find(|op| op.key() == key)
    }

    /// Whether the operator takes one term (else two).
    pub fn is_unary(self) -> bool {
        matches!(
            self,
            Operator::IsEmpty
                | Operator::IsNotEmpty
                | Operator::IsTrue
                | Operator::IsFalse
                | Operator::DoesNotExist
                | Operator::Exists
        )
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// An evaluation failed: the terms cannot be compared with the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("incompatible comparison arguments: {0}")]
pub struct ExpressionError(pub String);

/// A condition tree over terms of type `T` (inputs in a definition, compiled inputs in
/// a plan, plain values in tests).
#[derive(Debug, Clone, PartialEq)]
pub enum Expr<T> {
    And(Vec<Expr<T>>),
    Or(Vec<Expr<T>>),
    Compare {
        op: Operator,
        left: T,
        /// `None` for unary operators.
        right: Option<T>,
    },
}

/// A malformed condition: `path` is relative to the condition (`[1][2]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionError {
    pub path: String,
    pub message: String,
}

impl Expr<Input> {
    /// Reads a condition in prefix notation: `[operator, term, term]`,
    /// `[operator, term]` for unary operators, `[and | or, condition, ...]`.
    pub fn parse(value: &Value) -> Result<Expr<Input>, ConditionError> {
        let error = |path: String, message: String| ConditionError { path, message };
        let Value::Array(items) = value else {
            return Err(error(
                String::new(),
                "invalid expression syntax: a condition is a list, `[operator, term, term]` \
                 or `[and | or, condition, ...]`"
                    .into(),
            ));
        };
        let Some(Value::String(head)) = items.first() else {
            return Err(error(
                String::new(),
                "invalid expression syntax: a condition starts with an operator name".into(),
            ));
        };
        let rest = &items[1..];
        match head.as_str() {
            "and" | "or" => {
                if rest.is_empty() {
                    return Err(error(
                        String::new(),
                        format!("invalid expression syntax: `{head}` needs at least one condition"),
                    ));
                }
                let children = rest
                    .iter()
                    .enumerate()
                    .map(|(index, child)| {
                        Expr::parse(child).map_err(|err| ConditionError {
                            path: format!("[{}]{}", index + 1, err.path),
                            message: err.message,
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(if head == "and" {
                    Expr::And(children)
                } else {
                    Expr::Or(children)
                })
            }
            name => {
                let op = Operator::from_key(name).ok_or_else(|| {
                    error(
                        "[0]".into(),
                        format!(
                            "invalid expression syntax: unknown operator `{name}` (expected \
                             and, or, {})",
                            Operator::ALL.map(Operator::key).join(", ")
                        ),
                    )
                })?;
                let wanted = if op.is_unary() { 1 } else { 2 };
                if rest.len() != wanted {
                    return Err(error(
                        String::new(),
                        format!(
                            "invalid expression syntax: `{name}` takes {wanted} term{}, got {}",
                            if wanted == 1 { "" } else { "s" },
                            rest.len()
                        ),
                    ));
                }
                let term = |index: usize| {
                    let value = &rest[index];
                    if value.is_array() {
                        return Err(error(
                            format!("[{}]", index + 1),
                            "a term is an input (`{type, value}` or a scalar); write a list \
                             as `{type: value, value: [...]}`"
                                .into(),
                        ));
                    }
                    Input::from_json(value)
                        .map_err(|message| error(format!("[{}]", index + 1), message))
                };
                let left = term(0)?;
                let right = if op.is_unary() { None } else { Some(term(1)?) };
                Ok(Expr::Compare { op, left, right })
            }
        }
    }
}

impl<T> Expr<T> {
    /// The same tree with every term mapped (for compiling terms); the first error
    /// wins.
    pub fn try_map<U, E>(&self, f: &mut impl FnMut(&T) -> Result<U, E>) -> Result<Expr<U>, E> {
        Ok(match self {
            Expr::And(children) => Expr::And(
                children
                    .iter()
                    .map(|child| child.try_map(f))
                    .collect::<Result<_, _>>()?,
            ),
            Expr::Or(children) => Expr::Or(
                children
                    .iter()
                    .map(|child| child.try_map(f))
                    .collect::<Result<_, _>>()?,
            ),
            Expr::Compare { op, left, right } => Expr::Compare {
                op: *op,
                left: f(left)?,
                right: match right {
                    Some(right) => Some(f(right)?),
                    None => None,
                },
            },
        })
    }

    /// Evaluates the tree, resolving terms with `resolve`; `and`/`or` short-circuit.
    pub fn evaluate<E>(
        &self,
        resolve: &mut impl FnMut(&T) -> Result<Option<Value>, E>,
    ) -> Result<Result<bool, ExpressionError>, E> {
        match self {
            Expr::And(children) => {
                for child in children {
                    match child.evaluate(resolve)? {
                        Ok(true) => {}
                        other => return Ok(other),
                    }
                }
                Ok(Ok(true))
            }
            Expr::Or(children) => {
                for child in children {
                    match child.evaluate(resolve)? {
                        Ok(false) => {}
                        other => return Ok(other),
                    }
                }
                Ok(Ok(false))
            }
            Expr::Compare { op, left, right } => {
                let left = resolve(left)?;
                let right = match right {
                    Some(right) => resolve(right)?,
                    None => None,
                };
                Ok(compare(*op, left.as_ref(), right.as_ref()))
            }
        }
    }
}

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
fn parse_container(term: Option<&Value>) -> Option<Cow<'_, Value>> {
    match term {
        Some(Value::String(text)) if text.trim_start().starts_with(['[', '{']) => parse_value(term),
        other => other.map(Cow::Borrowed),
    }
}

fn number_f64(number: &Number) -> f64 {
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
fn is_equal(a: Option<&Value>, b: Option<&Value>) -> bool {
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

fn primitive_strict_equal(x: &Value, y: &Value) -> bool {
    match (x, y) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(p), Value::Bool(q)) => p == q,
        (Value::Number(p), Value::Number(q)) => number_f64(p) == number_f64(q),
        (Value::String(p), Value::String(q)) => p == q,
        _ => false,
    }
}

/// `left === right || lodash.isEqual(left, right)`.
fn strict_equal(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(x), Some(y)) => deep_equal(x, y, false),
        _ => false,
    }
}

/// JavaScript's `a < b`: `None` is `undefined` (a NaN was involved), which makes every
/// relational operator false.
fn less_than(a: Option<&Value>, b: Option<&Value>) -> Option<bool> {
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

fn truthy(value: Option<&Value>) -> bool {
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

fn describe(value: Option<&Value>) -> String {
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

/// Numbers below this are Unix seconds, above it milliseconds (seed §6 #2): 1e11 s
/// is the year 5138, 1e11 ms is 1973.
const SECONDS_BELOW: f64 = 1e11;

/// A date/time term as milliseconds since the Unix epoch: an ISO 8601 string (`2021`,
/// `2021-03-20`, `2021-03-20T11:52:21.881Z`, `2021-03-20 11:52+02:00`; UTC when no
/// offset is given), or a number (or numeric string) of seconds or milliseconds.
pub fn to_date_ms(term: Option<&Value>) -> Result<i64, ExpressionError> {
    let invalid = || ExpressionError(format!("{} cannot be read as a date/time", describe(term)));
    let number = match term {
        Some(Value::Number(number)) => number_f64(number),
        Some(Value::String(text)) => match parse_iso_date(text.trim()) {
            Some(ms) => return Ok(ms),
            None => {
                let number = string_to_number(text);
                if text.trim().is_empty() || number.is_nan() {
                    return Err(invalid());
                }
                number
            }
        },
        _ => return Err(invalid()),
    };
    if !number.is_finite() {
        return Err(invalid());
    }
    let ms = if number.abs() < SECONDS_BELOW {
        number * 1000.0
    } else {
        number
    };
    Ok(ms.trunc() as i64)
}

/// Parses the ISO 8601 forms listed at [`to_date_ms`].
fn parse_iso_date(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    let mut at = 0;
    let number = |min: usize, max: usize, at: &mut usize| -> Option<i64> {
        let start = *at;
        while *at < bytes.len() && *at - start < max && bytes[*at].is_ascii_digit() {
            *at += 1;
        }
        if *at - start < min {
            return None;
        }
        text[start..*at].parse().ok()
    };
    let year = number(4, 4, &mut at)?;
    let (mut month, mut day) = (1, 1);
    if bytes.get(at) == Some(&b'-') {
        at += 1;
        month = number(1, 2, &mut at)?;
        if bytes.get(at) == Some(&b'-') {
            at += 1;
            day = number(1, 2, &mut at)?;
        }
    }
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let (mut hour, mut minute, mut second, mut millis, mut offset_minutes) = (0, 0, 0, 0, 0);
    if matches!(bytes.get(at), Some(b'T' | b't' | b' ')) && at > 7 {
        at += 1;
        hour = number(2, 2, &mut at)?;
        if bytes.get(at) != Some(&b':') {
            return None;
        }
        at += 1;
        minute = number(2, 2, &mut at)?;
        if bytes.get(at) == Some(&b':') {
            at += 1;
            second = number(2, 2, &mut at)?;
            if matches!(bytes.get(at), Some(b'.' | b',')) {
                at += 1;
                let start = at;
                while bytes.get(at).is_some_and(u8::is_ascii_digit) {
                    at += 1;
                }
                let fraction = &text[start..at];
                if fraction.is_empty() {
                    return None;
                }
                let padded: String = fraction.chars().chain("000".chars()).take(3).collect();
                millis = padded.parse().ok()?;
            }
        }
        if hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        match bytes.get(at) {
            Some(b'Z' | b'z') => at += 1,
            Some(&sign @ (b'+' | b'-')) => {
                at += 1;
                let hours = number(2, 2, &mut at)?;
                if bytes.get(at) == Some(&b':') {
                    at += 1;
                }
                let minutes = if at < bytes.len() {
                    number(2, 2, &mut at)?
                } else {
                    0
                };
                if hours > 23 || minutes > 59 {
                    return None;
                }
                offset_minutes = (hours * 60 + minutes) * if sign == b'-' { -1 } else { 1 };
            }
            _ => {}
        }
    }
    if at != bytes.len() {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1000 + millis)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

    #[test]
    fn dates_parse() {
        let day = 86_400_000;
        assert_eq!(to_date_ms(Some(&json!("1970-01-02"))), Ok(day));
        assert_eq!(to_date_ms(Some(&json!("1970"))), Ok(0));
        assert_eq!(
            to_date_ms(Some(&json!("2021-03-20T12:50:30Z"))),
            Ok(1_616_244_630_000)
        );
        assert_eq!(
            to_date_ms(Some(&json!("2021-03-20T14:50:30.5+02:00"))),
            Ok(1_616_244_630_500)
        );
        assert_eq!(
            to_date_ms(Some(&json!(1_616_244_630))),
            Ok(1_616_244_630_000)
        );
        assert_eq!(
            to_date_ms(Some(&json!("1616244630000"))),
            Ok(1_616_244_630_000)
        );
        assert!(to_date_ms(Some(&json!("2021-02-30"))).is_err());
        assert!(to_date_ms(Some(&json!("yesterday"))).is_err());
        assert!(to_date_ms(Some(&json!(true))).is_err());
        assert!(to_date_ms(None).is_err());
    }

    #[test]
    fn conditions_parse_and_nest() {
        let expr = Expr::parse(&json!([
            "or",
            ["and", ["greaterThan", 600, 500], ["lessThanOrEqual", 10, 20]],
            ["in", "b", {"type": "value", "value": ["a", "b", "c"]}]
        ]))
        .unwrap();
        let mut resolve = |input: &Input| -> Result<Option<Value>, ()> {
            match input {
                Input::Value(value) => Ok(Some(value.clone())),
                _ => Err(()),
            }
        };
        assert_eq!(expr.evaluate(&mut resolve), Ok(Ok(true)));

        let err = Expr::parse(&json!(["and", ["equal", 1, 2], ["eq", 1, 2]])).unwrap_err();
        assert_eq!(err.path, "[2][0]");
        assert!(err.message.contains("unknown operator `eq`"));
        let err = Expr::parse(&json!(["exists", 1, 2])).unwrap_err();
        assert!(
            err.message.contains("takes 1 term, got 2"),
            "{}",
            err.message
        );
        assert!(Expr::parse(&json!("equal")).is_err());
        assert!(Expr::parse(&json!(["equal", [1], 2])).is_err());
        assert!(Expr::parse(&json!(["or"])).is_err());
    }
}

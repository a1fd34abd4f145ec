//! Branch conditions: the operator table of seed §3.1 (`equal` … `exists`, `and`/`or`)
//! with the JavaScript semantics Prismatic's evaluator has (JSON-parsing of string
//! terms, loose `==`, relational comparison, truthiness), and the condition tree.
//!
//! Terms are JSON values, or `None` for a reference that resolved to nothing
//! (JavaScript's `undefined`). Where the seed's documented examples and Prismatic's
//! SDK disagree, the documented examples win; `docs/flows.md` lists each case.
//!
//! The operators are applied in `operators`, on the coercions of `coercion`; date
//! terms are read in `dates`.

use std::fmt;

use serde_json::Value;

use super::definition::Input;

mod coercion;
mod dates;
mod operators;

pub use coercion::{
    js_number_to_string, js_string, number_to_string, parse_value, string_to_number,
};
pub use dates::to_date_ms;
pub use operators::compare;

/// A comparison operator (seed §3.1), by its key in the definition file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `equal`: `==`, or deep equality whose leaves compare with `==`.
    Equal,
    /// `notEqual`: not loosely equal.
    NotEqual,
    /// `greaterThan`: left > right.
    GreaterThan,
    /// `greaterThanOrEqual`: left >= right.
    GreaterThanOrEqual,
    /// `lessThan`: left < right.
    LessThan,
    /// `lessThanOrEqual`: left <= right.
    LessThanOrEqual,
    /// `in`: left is a substring of, a member of, or a key of the right.
    In,
    /// `notIn`: the negation of `in`.
    NotIn,
    /// `isEmpty`: left is `""` or `[]`.
    IsEmpty,
    /// `isNotEmpty`: the negation of `isEmpty`.
    IsNotEmpty,
    /// `exactlyMatches`: strictly equal, the terms compared as given.
    ExactlyMatches,
    /// `doesNotExactlyMatch`: the negation of `exactlyMatches`.
    DoesNotExactlyMatch,
    /// `startsWith`: the right starts with the left.
    StartsWith,
    /// `doesNotStartWith`: the negation of `startsWith`.
    DoesNotStartWith,
    /// `endsWith`: the right ends with the left.
    EndsWith,
    /// `doesNotEndWith`: the negation of `endsWith`.
    DoesNotEndWith,
    /// `dateTimeAfter`: left is a later instant than right.
    DateTimeAfter,
    /// `dateTimeBefore`: left is an earlier instant than right.
    DateTimeBefore,
    /// `dateTimeSame`: left and right are the same instant.
    DateTimeSame,
    /// `isTrue`: left is `true`, `yes` and the like, or truthy.
    IsTrue,
    /// `isFalse`: the negation of `isTrue`.
    IsFalse,
    /// `doesNotExist`: left is undefined, null, 0, false or `""`.
    DoesNotExist,
    /// `exists`: the negation of `doesNotExist`.
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
    /// True when every sub-condition is true.
    And(Vec<Expr<T>>),
    /// True when any sub-condition is true.
    Or(Vec<Expr<T>>),
    /// One comparison of two terms (one for unary operators).
    Compare {
        /// The operator.
        op: Operator,
        /// The left term.
        left: T,
        /// `None` for unary operators.
        right: Option<T>,
    },
}

/// A malformed condition: `path` is relative to the condition (`[1][2]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionError {
    /// Where in the condition, relative to its root (`[1][2]`).
    pub path: String,
    /// What is wrong there.
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

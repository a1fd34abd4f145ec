//! Golden tests of the branch operators: every documented example of the operator
//! table in `seed-001-part3.md` §3.1, with the documented surprises, plus the cases
//! where the docs and Prismatic's SDK disagree (`docs/flows.md` says which side we
//! follow and why). Terms are JSON; `None` is a reference that resolved to nothing.

use serde_json::{Value, json};
use sluice_runtime::flow::{Expr, Input, Operator, compare};

/// `op left right`, expecting `expected`.
fn check(op: &str, left: Option<Value>, right: Option<Value>, expected: bool) {
    let operator = Operator::from_key(op).unwrap_or_else(|| panic!("no operator {op}"));
    let got = compare(operator, left.as_ref(), right.as_ref())
        .unwrap_or_else(|err| panic!("{op} {left:?} {right:?}: {err}"));
    assert_eq!(got, expected, "{op} {left:?} {right:?}");
}

fn yes(op: &str, left: Value, right: Value) {
    check(op, Some(left), Some(right), true);
}

fn no(op: &str, left: Value, right: Value) {
    check(op, Some(left), Some(right), false);
}

fn unary(op: &str, term: Option<Value>, expected: bool) {
    check(op, term, None, expected);
}

#[test]
fn every_operator_of_the_table_exists() {
    let keys: Vec<&str> = Operator::ALL.iter().map(|op| op.key()).collect();
    assert_eq!(
        keys,
        [
            "equal",
            "notEqual",
            "greaterThan",
            "greaterThanOrEqual",
            "lessThan",
            "lessThanOrEqual",
            "in",
            "notIn",
            "isEmpty",
            "isNotEmpty",
            "exactlyMatches",
            "doesNotExactlyMatch",
            "startsWith",
            "doesNotStartWith",
            "endsWith",
            "doesNotEndWith",
            "dateTimeAfter",
            "dateTimeBefore",
            "dateTimeSame",
            "isTrue",
            "isFalse",
            "doesNotExist",
            "exists"
        ]
    );
}

#[test]
fn equal_is_loose_or_deep() {
    yes("equal", json!("5.2"), json!(5.2));
    yes("equal", json!(false), json!(0));
    no("equal", json!("Hello"), json!("hello"));
    yes("equal", json!([1, 2, 3]), json!([1, 2, 3]));
    yes(
        "equal",
        json!({"a": 1, "b": [2]}),
        json!({"b": [2], "a": 1}),
    );
    // From the SDK's tests: leaves of a deep comparison compare loosely.
    yes("equal", json!({"a": ""}), json!({"a": false}));
    // JavaScript's `==` with a list: `[1,2,3] == "1,2,3"`.
    yes("equal", json!([1, 2, 3]), json!("1,2,3"));
    check("equal", None, Some(json!(null)), true);
    no("equal", json!(null), json!(0));
}

#[test]
fn not_equal_is_the_negation() {
    yes("notEqual", json!(5.3), json!(5.2));
    yes("notEqual", json!([1, 2, 3]), json!([1, 2, 4]));
    no("notEqual", json!({"a": ""}), json!({"a": false}));
}

#[test]
fn greater_and_less_than_compare_like_javascript() {
    yes("greaterThan", json!("5.3"), json!(5.2));
    // Strings compare by code unit: lower-case letters sort after upper-case ones.
    yes("greaterThan", json!("hello"), json!("World"));
    no("greaterThan", json!("Hello"), json!("World"));
    yes("greaterThan", json!(true), json!(false));
    no("greaterThan", json!(5), json!(5));
    yes("greaterThanOrEqual", json!(5.3), json!("5.3"));
    yes("lessThan", json!(3), json!(4));
    yes("lessThan", json!("abc"), json!("daa"));
    yes("lessThanOrEqual", json!(4), json!(4));
    no("lessThanOrEqual", json!(5), json!(4));
    // A comparison with NaN is false both ways.
    no("lessThan", json!("abc"), json!(4));
    no("greaterThanOrEqual", json!("abc"), json!(4));
    check("lessThan", None, Some(json!(1)), false);
    // `null` is 0 for relational comparisons.
    yes("lessThan", json!(null), json!(1));
}

#[test]
fn in_tests_substrings_members_and_keys() {
    yes("in", json!("world"), json!("Hello, world!"));
    no("in", json!("World"), json!("Hello, world!"));
    yes("in", json!(2), json!([1, 2, 3]));
    // As documented (the SDK says true; see docs/flows.md): list membership is strict.
    no("in", json!("2"), json!([1, 2, 3]));
    yes("in", json!("2"), json!(["1", "2", "3"]));
    // A list given as JSON text is parsed first.
    yes("in", json!(2), json!("[1,2,3]"));
    no("in", json!(false), json!([0, 1, 2]));
    no("in", json!([4, 5]), json!([1, 2, 3, [4, 5]]));
    yes("in", json!("bar"), json!({"foo": null, "bar": null}));
    no("in", json!("baz"), json!({"foo": null, "bar": null}));
    // Substring test of a number's text.
    yes("in", json!(2), json!("a123"));
    yes("in", json!(2), json!("123"));
    no("notIn", json!(2), json!([1, 2, 3]));
    yes("notIn", json!("Hi"), json!("Hello"));
    let err = compare(Operator::In, Some(&json!(1)), Some(&json!(5))).unwrap_err();
    assert!(
        err.to_string()
            .contains("incompatible comparison arguments")
    );
}

#[test]
fn in_keeps_a_right_hand_string_that_looks_like_a_json_scalar_a_string() {
    // Only JSON text of a list or an object is parsed (a container written as
    // text); a string that reads as a number, a boolean, null or a quoted string
    // stays the string it is, so `in` tests for a substring instead of failing the
    // run (Prismatic's evaluator parses it and fails: "123" is no container).
    yes("in", json!("2"), json!("123"));
    yes("in", json!(2), json!("123"));
    no("in", json!("[From Zendesk]"), json!("42"));
    yes("notIn", json!("[From Zendesk]"), json!("42"));
    for text in ["true", "false", "null", "-1.5e3", "\"quoted\"", " 7 "] {
        no("in", json!("[From Zendesk]"), json!(text));
        yes("notIn", json!("[From Zendesk]"), json!(text));
        yes("in", json!(text), json!(text));
    }
    yes("in", json!("ru"), json!("true"));
    yes("in", json!("\"q"), json!("\"quoted\""));
    // Lists and objects given as JSON text are still parsed.
    yes("in", json!(2), json!(" [1, 2] "));
    yes("in", json!("k"), json!("{\"k\": 1}"));
    // A right side that is not a string, a list or an object is still an error.
    for right in [json!(5), json!(true), json!(null)] {
        assert!(
            compare(Operator::In, Some(&json!(1)), Some(&right)).is_err(),
            "{right}"
        );
    }
}

#[test]
fn is_empty_takes_strings_and_lists_only() {
    unary("isEmpty", Some(json!("")), true);
    unary("isEmpty", Some(json!([])), true);
    unary("isEmpty", Some(json!("[]")), true);
    unary("isEmpty", Some(json!("abc")), false);
    unary("isEmpty", Some(json!(["Hello ", "World"])), false);
    unary("isNotEmpty", Some(json!("abc")), true);
    unary("isNotEmpty", Some(json!([])), false);
    // Any other type is an error, as documented.
    for term in [json!(5), json!({}), json!(null), json!(true)] {
        assert!(
            compare(Operator::IsEmpty, Some(&term), None).is_err(),
            "{term}"
        );
    }
    assert!(compare(Operator::IsNotEmpty, None, None).is_err());
}

#[test]
fn exactly_matches_does_not_coerce() {
    no("exactlyMatches", json!("5"), json!(5));
    yes("doesNotExactlyMatch", json!("5"), json!(5));
    yes(
        "exactlyMatches",
        json!([1, {"a": "x"}]),
        json!([1, {"a": "x"}]),
    );
    no("exactlyMatches", json!({"a": ""}), json!({"a": false}));
    yes("doesNotExactlyMatch", json!({"a": ""}), json!({"a": false}));
    yes("exactlyMatches", json!(1), json!(1.0));
}

#[test]
fn starts_with_tests_whether_the_right_starts_with_the_left() {
    // The documented surprise: the order is (prefix, text).
    yes("startsWith", json!("Test"), json!("Testing Value"));
    no("startsWith", json!("test"), json!("Testing Value"));
    no("startsWith", json!("Test"), json!("A Testing Value"));
    no("startsWith", json!("Testing Value"), json!("Test"));
    yes("doesNotStartWith", json!("test"), json!("Testing Value"));
    yes("endsWith", json!("orld!"), json!("Hello, World!"));
    no("endsWith", json!("orld"), json!("Hello, World!"));
    yes("doesNotEndWith", json!("orld"), json!("Hello, World!"));
    // Numbers are compared as JavaScript prints them.
    yes("startsWith", json!(12), json!(123));
}

#[test]
fn dates_compare_iso_strings_and_epoch_numbers() {
    yes(
        "dateTimeSame",
        json!("2021-03-20T12:50:30Z"),
        json!(1_616_244_630_000_u64),
    );
    yes(
        "dateTimeAfter",
        json!("2021-03-20T11:52:21.881Z"),
        json!("2021-03-20"),
    );
    yes(
        "dateTimeBefore",
        json!("2021-03-20"),
        json!("2021-03-20T11:52:21.881Z"),
    );
    no(
        "dateTimeAfter",
        json!("2021-03-20"),
        json!("2021-03-20T00:00:00Z"),
    );
    yes(
        "dateTimeSame",
        json!("2021-03-20"),
        json!("2021-03-20T00:00:00.000Z"),
    );
    // Numbers below 1e11 are seconds: the docs' 1631568050 is 2021-09-13.
    yes(
        "dateTimeSame",
        json!(1_631_568_050),
        json!("2021-09-13T21:20:50Z"),
    );
    yes(
        "dateTimeSame",
        json!("1616198400"),
        json!("2021-03-20T00:00:00Z"),
    );
    yes("dateTimeBefore", json!("2021"), json!("2021-01-02"));
    yes(
        "dateTimeAfter",
        json!("2030-03-20T12:50:30.105Z"),
        json!(1_631_568_051),
    );
    assert!(
        compare(
            Operator::DateTimeAfter,
            Some(&json!("soon")),
            Some(&json!(1))
        )
        .is_err()
    );
}

#[test]
fn is_true_reads_words_then_truthiness() {
    for word in ["t", "true", "y", "yes", "YES", "True"] {
        unary("isTrue", Some(json!(word)), true);
        unary("isFalse", Some(json!(word)), false);
    }
    for word in ["f", "false", "n", "no", "No"] {
        unary("isTrue", Some(json!(word)), false);
        unary("isFalse", Some(json!(word)), true);
    }
    for truthy in [json!([]), json!({}), json!("Hello"), json!(-5), json!(true)] {
        unary("isTrue", Some(truthy.clone()), true);
        unary("isFalse", Some(truthy), false);
    }
    for falsy in [json!(0), json!(null), json!(""), json!(false)] {
        unary("isTrue", Some(falsy.clone()), false);
        unary("isFalse", Some(falsy), true);
    }
    unary("isTrue", None, false);
    unary("isFalse", None, true);
}

#[test]
fn exists_is_false_for_zero_and_false() {
    // The documented surprise: 0 and false do not exist.
    for missing in [
        json!(0),
        json!(false),
        json!(null),
        json!(""),
        json!(0.0),
        json!("0"),
        json!("false"),
    ] {
        unary("exists", Some(missing.clone()), false);
        unary("doesNotExist", Some(missing), true);
    }
    unary("exists", None, false);
    unary("doesNotExist", None, true);
    for present in [
        json!(1),
        json!("Hello"),
        json!([]),
        json!({}),
        json!(" "),
        json!(true),
    ] {
        unary("exists", Some(present.clone()), true);
        unary("doesNotExist", Some(present), false);
    }
}

/// `(foo > 500 and bar <= 20) or ("b" in ["a","b","c"])`, and short-circuiting.
#[test]
fn and_or_nest_and_short_circuit() {
    let eval = |condition: Value| -> Result<bool, String> {
        let expr = Expr::parse(&condition).map_err(|err| err.message)?;
        let mut resolve = |input: &Input| -> Result<Option<Value>, String> {
            match input {
                Input::Value(value) => Ok(Some(value.clone())),
                Input::Reference(path) if path == "missing.results" => Ok(None),
                other => Err(format!("unexpected {other:?}")),
            }
        };
        expr.evaluate(&mut resolve)?.map_err(|err| err.to_string())
    };
    let list = json!({"type": "value", "value": ["a", "b", "c"]});
    let seed_example = |foo: i64, bar: i64, letter: &str| {
        json!([
            "or",
            [
                "and",
                ["greaterThan", foo, 500],
                ["lessThanOrEqual", bar, 20]
            ],
            ["in", letter, list]
        ])
    };
    assert_eq!(eval(seed_example(600, 10, "z")), Ok(true));
    assert_eq!(eval(seed_example(600, 30, "z")), Ok(false));
    assert_eq!(eval(seed_example(1, 30, "b")), Ok(true));
    // `and` stops at the first false term, so the error in the second is never hit.
    assert_eq!(
        eval(json!(["and", ["equal", 1, 2], ["isEmpty", 5]])),
        Ok(false)
    );
    assert!(eval(json!(["and", ["equal", 1, 1], ["isEmpty", 5]])).is_err());
    assert_eq!(
        eval(json!(["or", ["equal", 1, 1], ["isEmpty", 5]])),
        Ok(true)
    );
    assert_eq!(
        eval(json!(["doesNotExist", {"type": "reference", "value": "missing.results"}])),
        Ok(true)
    );
}

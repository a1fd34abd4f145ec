//! The `text` component through the harness: each action's outputs, the input errors,
//! and the manifest's action keys and input schemas. The same checks run against both
//! twins, the Rust component (`examples/text`) and the Python one (`examples/text-py`,
//! on the Python SDK), so the two are held to the same behaviour. Each twin is one test
//! that loads its component once: compiling the 19 MB Python component takes tens of
//! seconds, which a test per check would pay again and again.

use std::path::PathBuf;

use serde_json::{Value, json};
use sluice_runtime::GuestErrorKind;
use sluice_runtime::guest_build::example;
use sluice_runtime::guest_build::python::python_example;
use sluice_runtime::harness::{Harness, Run};

/// Every check, against the component at `wasm`; `twin` names it in failures.
async fn suite(twin: &str, wasm: PathBuf) -> Value {
    let harness = Harness::from_file(&wasm).unwrap();
    replace_replaces_every_occurrence(twin, &harness).await;
    replace_refuses_bad_input(twin, &harness).await;
    to_integer_reads_signed_decimal_integers(twin, &harness).await;
    to_integer_refuses_what_is_not_an_integer(twin, &harness).await;
    unknown_actions_are_invalid_input_naming_the_known_ones(twin, &harness).await;
    manifest_declares_both_actions_and_their_inputs(twin, &harness).await
}

#[tokio::test]
async fn rust_twin() {
    suite("rust", example("text").unwrap()).await;
}

#[tokio::test]
async fn python_twin() {
    let manifest = suite("python", python_example("text-py").unwrap()).await;
    // Beyond the checks, the twins declare exactly the same document.
    let rust = Harness::from_file(example("text").unwrap()).unwrap();
    assert_eq!(manifest, rust.manifest().await.unwrap());
}

async fn action(harness: &Harness, name: &str, input: Value) -> Run {
    harness.action(name, input).await.unwrap()
}

/// The output of a call that must succeed, as JSON.
fn output(twin: &str, run: &Run) -> Value {
    run.json()
        .unwrap_or_else(|err| panic!("{twin}: {err}: {:?}", run.outcome))
}

/// The message of a call that must fail with `invalid-input`.
fn invalid_input(twin: &str, run: &Run) -> String {
    let error = run
        .guest_error()
        .unwrap_or_else(|err| panic!("{twin}: {err}"));
    assert_eq!(
        error.kind,
        GuestErrorKind::InvalidInput,
        "{twin}: {error:?}"
    );
    error.message.clone()
}

async fn replace_replaces_every_occurrence(twin: &str, harness: &Harness) {
    let cases = [
        (
            json!({"text": "gh-13", "find": "gh-", "replacement": ""}),
            "13",
        ),
        // `replacement` defaults to the empty string.
        (json!({"text": "gh-13", "find": "gh-"}), "13"),
        (
            json!({"text": "a-b-c", "find": "-", "replacement": "+"}),
            "a+b+c",
        ),
        (
            json!({"text": "aaaa", "find": "aa", "replacement": "b"}),
            "bb",
        ),
        (
            json!({"text": "none here", "find": "x", "replacement": "y"}),
            "none here",
        ),
        (
            json!({"text": "héllo wörld", "find": "ö", "replacement": "o"}),
            "héllo world",
        ),
        (json!({"text": "", "find": "x", "replacement": "y"}), ""),
    ];
    for (input, expected) in cases {
        let run = action(harness, "replace", input.clone()).await;
        assert_eq!(output(twin, &run), json!(expected), "{twin}: {input}");
    }
}

async fn replace_refuses_bad_input(twin: &str, harness: &Harness) {
    let message = invalid_input(
        twin,
        &action(harness, "replace", json!({"text": "x"})).await,
    );
    assert!(message.contains("find"), "{twin}: {message}");
    let run = action(
        harness,
        "replace",
        json!({"text": "x", "find": "", "replacement": "y"}),
    )
    .await;
    let message = invalid_input(twin, &run);
    assert!(message.contains("must not be empty"), "{twin}: {message}");
    let run = action(harness, "replace", json!({"text": 1, "find": "x"})).await;
    let message = invalid_input(twin, &run);
    assert!(
        message.contains("text") || message.contains("string"),
        "{twin}: {message}"
    );
    // The inputs deny unknown fields (a misspelt `replacment` is not silently dropped).
    let run = action(
        harness,
        "replace",
        json!({"text": "x", "find": "x", "replacment": "y"}),
    )
    .await;
    let message = invalid_input(twin, &run);
    assert!(message.contains("replacment"), "{twin}: {message}");
    invalid_input(twin, &action(harness, "replace", json!([1, 2])).await);
}

async fn to_integer_reads_signed_decimal_integers(twin: &str, harness: &Harness) {
    let cases = [
        ("13", json!(13)),
        (" -7 ", json!(-7)),
        ("+5", json!(5)),
        ("007", json!(7)),
        ("\t42\n", json!(42)),
        ("9223372036854775807", json!(i64::MAX)),
        ("-9223372036854775808", json!(i64::MIN)),
    ];
    for (text, expected) in cases {
        let run = action(harness, "toInteger", json!({ "text": text })).await;
        assert_eq!(output(twin, &run), expected, "{twin}: {text:?}");
    }
}

async fn to_integer_refuses_what_is_not_an_integer(twin: &str, harness: &Harness) {
    for text in [
        "thirteen",
        "",
        "   ",
        "1.5",
        "1e3",
        "1_000",
        "0x10",
        "- 7",
        "9223372036854775808",
        "٣",
    ] {
        let run = action(harness, "toInteger", json!({ "text": text })).await;
        let message = invalid_input(twin, &run);
        assert!(
            message.contains("is not an integer"),
            "{twin}: {text:?}: {message}"
        );
    }
    let message = invalid_input(twin, &action(harness, "toInteger", json!({})).await);
    assert!(message.contains("text"), "{twin}: {message}");
    let message = invalid_input(
        twin,
        &action(harness, "toInteger", json!({"text": 13})).await,
    );
    assert!(
        message.contains("text") || message.contains("string"),
        "{twin}: {message}"
    );
}

async fn unknown_actions_are_invalid_input_naming_the_known_ones(twin: &str, harness: &Harness) {
    let message = invalid_input(twin, &action(harness, "upperCase", json!({})).await);
    assert!(
        message.contains("upperCase")
            && message.contains("replace")
            && message.contains("toInteger"),
        "{twin}: {message}"
    );
}

async fn manifest_declares_both_actions_and_their_inputs(twin: &str, harness: &Harness) -> Value {
    let manifest = harness.manifest().await.unwrap();
    assert_eq!(manifest["key"], "text", "{twin}");
    assert_eq!(manifest["version"], "0.1.0", "{twin}");
    assert_eq!(manifest["display"]["label"], "Text", "{twin}");
    let actions = manifest["actions"].as_object().unwrap();
    let mut keys: Vec<&str> = actions.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["replace", "toInteger"], "{twin}");
    let replace = &actions["replace"]["inputs"];
    assert_eq!(replace["type"], "object", "{twin}");
    assert_eq!(replace["required"], json!(["text", "find"]), "{twin}");
    assert_eq!(
        replace["properties"]["replacement"]["default"], "",
        "{twin}"
    );
    assert_eq!(replace["additionalProperties"], false, "{twin}");
    let to_integer = &actions["toInteger"]["inputs"];
    assert_eq!(to_integer["required"], json!(["text"]), "{twin}");
    assert_eq!(to_integer["properties"]["text"]["type"], "string", "{twin}");
    assert_eq!(actions["replace"]["allowsBranching"], false, "{twin}");
    assert_eq!(manifest["triggers"], json!({}), "{twin}");
    assert_eq!(manifest["dataSources"], json!({}), "{twin}");
    assert_eq!(manifest["connections"], json!([]), "{twin}");
    manifest
}

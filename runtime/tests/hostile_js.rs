//! JavaScript guests (componentize-js, built from `examples/hostile-js` with npm) end
//! with typed outcomes when they misbehave: an infinite loop runs out of fuel or time,
//! a memory bomb stops at the memory limit, unbounded recursion is an error, not a
//! crash; and the same loaded component runs a normal call right after each. Also: what `@sluice/sdk`'s output path costs (a 5 MB result fits the
//! default budgets), and that its serializer writes what `JSON.stringify` writes.

use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{Value, json};
use sluice_runtime::guest_build::js::js_example;
use sluice_runtime::harness::{Harness, Run};
use sluice_runtime::{Data, GuestErrorKind, Limits, Outcome};

/// The hostile component in a fresh harness; loaded (and compiled) once per process.
fn hostile() -> Harness {
    static LOADED: OnceLock<Harness> = OnceLock::new();
    LOADED
        .get_or_init(|| {
            let wasm = js_example("hostile-js").unwrap_or_else(|e| panic!("{e}"));
            Harness::from_file(wasm).unwrap_or_else(|e| panic!("{e}"))
        })
        .fresh()
}

/// A well-behaved call on the same loaded component succeeds.
async fn assert_still_works(harness: &Harness) {
    let run = harness.action("console", json!({})).await.unwrap();
    assert!(run.outcome.is_success(), "{:?}", run.outcome);
}

fn fatal_message(run: &Run) -> String {
    let error = run
        .guest_error()
        .unwrap_or_else(|e| panic!("expected a guest error: {e}"));
    assert_eq!(error.kind, GuestErrorKind::Fatal, "{}", error.message);
    error.message.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infinite_loop_exhausts_fuel_exactly() {
    let harness = hostile().with_limits(Limits::default().fuel(200_000_000));
    let run = harness.action("spin", json!({})).await.unwrap();
    assert_eq!(run.outcome, Outcome::OutOfFuel { limit: 200_000_000 });
    assert_eq!(run.metering.fuel_used, 200_000_000);
    assert_still_works(&hostile()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infinite_loop_times_out() {
    let limits = Limits::default()
        .fuel(u64::MAX / 2)
        .timeout(Duration::from_millis(300));
    let run = hostile()
        .with_limits(limits)
        .action("spin", json!({}))
        .await
        .unwrap();
    assert_eq!(run.outcome, Outcome::Timeout { limit_ms: 300 });
    assert!(run.metering.fuel_used > 0);
    assert_still_works(&hostile()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_bomb_hits_the_memory_limit() {
    let cap = 32u64 << 20;
    let run = hostile()
        .with_limits(Limits::default().memory_bytes(cap))
        .action("memoryBomb", json!({}))
        .await
        .unwrap();
    // SpiderMonkey turns the refused growth into a catchable "out of memory"
    // exception (the SDK makes it a fatal error); the runtime remembers the refusal
    // and reports the memory limit.
    match run.outcome {
        Outcome::MemoryLimit { limit, requested } => {
            assert_eq!(limit, cap);
            assert!(requested > cap);
        }
        other => panic!("expected a memory limit, got {other:?}"),
    }
    let peak = run.metering.peak_memory_bytes;
    assert!(peak <= cap, "peak {peak}");
    assert!(peak > cap / 2, "the bomb barely grew: {peak}");
    assert_still_works(&hostile()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_recursion_is_an_error_not_a_crash() {
    let run = hostile().action("deepRecursion", json!({})).await.unwrap();
    // SpiderMonkey's own recursion limit stops it before the wasm stack overflows.
    let message = fatal_message(&run);
    assert_eq!(message, "InternalError: too much recursion");
    assert_still_works(&hostile()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uncaught_errors_are_fatal_with_their_message() {
    let run = hostile().action("throws", json!({})).await.unwrap();
    assert_eq!(
        fatal_message(&run),
        "TypeError: can't access property \"field\", missing is undefined"
    );
    let run = hostile().action("nope", json!({})).await.unwrap();
    let error = run.guest_error().unwrap();
    assert_eq!(error.kind, GuestErrorKind::InvalidInput);
    assert!(
        error
            .message
            .starts_with("unknown action `nope` (known: `console`, "),
        "{}",
        error.message
    );
    let run = hostile()
        .action("output", json!({"size": "big"}))
        .await
        .unwrap();
    let error = run.guest_error().unwrap();
    assert_eq!(error.kind, GuestErrorKind::InvalidInput);
    assert_eq!(
        error.message,
        "invalid input of action `output` at `size`: expected integer, found string"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_output_reaches_the_log() {
    let run = hostile().action("console", json!({})).await.unwrap();
    assert_eq!(run.json().unwrap(), Value::Null);
    assert_eq!(run.messages(), vec!["to stdout", "to stderr"]);
}

/// Fuel per byte of a `size`-character JSON string result (building the string
/// included), under the default budgets.
async fn output_fuel_per_byte(size: usize) -> (u64, Run) {
    let run = hostile()
        .action("output", json!({ "size": size }))
        .await
        .unwrap();
    let output = run.output().unwrap_or_else(|e| panic!("{size} bytes: {e}"));
    match &output.data {
        Data::Json(text) => assert_eq!(text.len(), size + 2),
        other => panic!("expected JSON, got {other:?}"),
    }
    (run.metering.fuel_used / size as u64, run)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_five_megabyte_result_fits_the_default_budgets() {
    // componentize-js's bindings counted UTF-8 bytes in an interpreted loop: about
    // 2,600 fuel per byte, so 5 MB ran out of the default 10 billion. And
    // JSON.stringify of a 1 MB string peaked at 77 MiB, past the 64 MiB budget.
    // sluice-build encodes natively and the SDK serializes in pieces.
    for size in [1 << 20, 5 << 20] {
        let (per_byte, run) = output_fuel_per_byte(size).await;
        eprintln!(
            "{size} bytes: {per_byte} fuel per byte, peak memory {} bytes",
            run.metering.peak_memory_bytes
        );
        assert!(per_byte < 150, "{size} bytes cost {per_byte} fuel per byte");
        assert!(run.metering.peak_memory_bytes <= Limits::default().memory_bytes);
    }
    // 80,000 records, 5.3 MB of JSON.
    let run = hostile()
        .action("records", json!({"count": 80_000}))
        .await
        .unwrap();
    let records = run.json().unwrap();
    assert_eq!(records.as_array().map(Vec::len), Some(80_000));
    assert_eq!(
        records[79_999],
        json!({"id": 79_999, "name": "record 79999", "tags": ["a", "b"], "active": false})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_serializer_writes_what_json_stringify_writes() {
    let run = hostile().action("jsonFidelity", json!({})).await.unwrap();
    let result = run.json().unwrap();
    assert!(result["checked"].as_u64().unwrap() > 20, "{result}");
    assert_eq!(result["differences"], json!([]));
}

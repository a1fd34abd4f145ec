//! Hostile Python guests (examples/hostile-py, on the Python SDK) end with their own
//! typed outcome, within their limits, and the same runtime runs `hello` right after:
//! the Python interpreter inside a component is contained like a Rust guest.
//!
//! Compiling the 19 MB interpreter component takes tens of seconds, so the tests share
//! a persistent artifact cache under the target directory, and load one at a time: the
//! first compiles, the others find the artifact.

mod common;

use std::sync::Mutex;
use std::time::Duration;

use common::*;
use sluice_runtime::guest_build::guest_target_dir;
use sluice_runtime::guest_build::python::python_example;
use sluice_runtime::{
    Data, ExecutionReport, GuestErrorKind, Limits, LoadedComponent, Outcome, Returned, Runtime,
    RuntimeConfig,
};

/// A runtime like `common::runtime`, with the shared artifact cache.
fn python_runtime() -> Runtime {
    let cache = guest_target_dir().with_file_name("python").join("compiled");
    Runtime::new(
        RuntimeConfig::default()
            .max_concurrency(4)
            .busy_wait(Duration::from_secs(5))
            .cache_dir(cache),
    )
    .expect("runtime")
}

/// The hostile Python component, loaded into `runtime`.
fn hostile(runtime: &Runtime) -> LoadedComponent {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let path = python_example("hostile-py").unwrap_or_else(|err| panic!("{err}"));
    let bytes = std::fs::read(&path).unwrap();
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    runtime
        .load(&bytes)
        .unwrap_or_else(|err| panic!("loading {}: {err}", path.display()))
}

async fn call(
    runtime: &Runtime,
    guest: &LoadedComponent,
    name: &str,
    input: &str,
    limits: &Limits,
) -> ExecutionReport {
    let (caps, _) = capabilities();
    run(runtime, guest, action(name, input), &caps, limits).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_python_guests_end_with_typed_outcomes() {
    let runtime = python_runtime();
    let guest = hostile(&runtime);
    let hello = load(&runtime, "hello");

    // An infinite loop runs out of fuel, to the unit.
    let limits = Limits::default().fuel(50_000_000);
    let report = call(&runtime, &guest, "spin", "{}", &limits).await;
    assert_eq!(report.outcome, Outcome::OutOfFuel { limit: 50_000_000 });
    assert_eq!(report.metering.fuel_used, 50_000_000);
    assert_hello_works(&runtime, &hello).await;

    // With fuel to spare, the wall-clock deadline stops it.
    let limits = Limits::default()
        .fuel(u64::MAX / 2)
        .timeout(Duration::from_millis(300));
    let report = call(&runtime, &guest, "spin", "{}", &limits).await;
    assert_eq!(report.outcome, Outcome::Timeout { limit_ms: 300 });
    assert!(report.metering.fuel_used > 0);
    assert_hello_works(&runtime, &hello).await;

    // A memory bomb: Python's MemoryError is not caught by the SDK, so the call traps
    // and the host reports the memory limit, never more than the cap in use.
    let cap = 40u64 << 20;
    let limits = Limits::default().memory_bytes(cap);
    let report = call(&runtime, &guest, "memoryBomb", "{}", &limits).await;
    match report.outcome {
        Outcome::MemoryLimit { limit, requested } => {
            assert_eq!(limit, cap);
            assert!(requested > cap);
        }
        ref other => panic!("expected a memory limit, got {other:?}"),
    }
    assert!(report.metering.peak_memory_bytes <= cap);
    assert!(
        report.metering.peak_memory_bytes > cap / 2,
        "the bomb barely grew: {}",
        report.metering.peak_memory_bytes
    );
    assert_hello_works(&runtime, &hello).await;

    // Deep recursion under Python's recursion limit is a RecursionError, which the SDK
    // reports as `fatal` with its traceback.
    let report = call(&runtime, &guest, "deepRecursion", "{}", &Limits::default()).await;
    match &report.outcome {
        Outcome::GuestError { error } => {
            assert_eq!(error.kind, GuestErrorKind::Fatal);
            assert!(
                error
                    .message
                    .starts_with("RecursionError: maximum recursion depth exceeded"),
                "{}",
                error.message
            );
            assert!(error.message.contains("in down"), "{}", error.message);
        }
        other => panic!("expected a fatal guest error, got {other:?}"),
    }
    assert_hello_works(&runtime, &hello).await;

    // With the recursion limit lifted, Python's frames (on the heap since 3.11) grow
    // until the memory budget stops them.
    let cap = 48u64 << 20;
    let limits = Limits::default().memory_bytes(cap);
    let report = call(&runtime, &guest, "unboundedRecursion", "{}", &limits).await;
    assert!(
        matches!(report.outcome, Outcome::MemoryLimit { limit, .. } if limit == cap),
        "{:?}",
        report.outcome
    );
    assert!(report.metering.peak_memory_bytes <= cap);
    assert_hello_works(&runtime, &hello).await;
}

#[tokio::test]
async fn python_failures_and_prints_reach_the_host() {
    let runtime = python_runtime();
    let guest = hostile(&runtime);

    // An uncaught exception is `fatal`, with the exception, its message and where.
    let report = call(&runtime, &guest, "raises", "{}", &Limits::default()).await;
    match &report.outcome {
        Outcome::GuestError { error } => {
            assert_eq!(error.kind, GuestErrorKind::Fatal);
            assert!(
                error.message.starts_with("KeyError: 'missing'"),
                "{}",
                error.message
            );
            assert!(error.message.contains("Traceback"), "{}", error.message);
            assert!(error.message.contains("app.py"), "{}", error.message);
        }
        other => panic!("expected a fatal guest error, got {other:?}"),
    }

    // Nothing is imported at call time: the interpreter was snapshotted after the
    // build's imports, and there is no filesystem to load a module from.
    let report = call(&runtime, &guest, "lazyImport", "{}", &Limits::default()).await;
    assert!(
        matches!(&report.outcome, Outcome::GuestError { error }
            if error.message.starts_with("ModuleNotFoundError: No module named 'decimal'")),
        "{:?}",
        report.outcome
    );
    // No file opens, not even the component's own sources.
    for path in ["/etc/passwd", "/1/app.py", "/python/json/__init__.py"] {
        let input = format!(r#"{{"path": "{path}"}}"#);
        let report = call(&runtime, &guest, "readFile", &input, &Limits::default()).await;
        assert!(
            matches!(&report.outcome, Outcome::GuestError { error }
                if error.message.starts_with("FileNotFoundError")),
            "{path}: {:?}",
            report.outcome
        );
    }

    // `print` lands in the execution log, marked as stdout.
    let (caps, logs) = capabilities();
    let report = run(
        &runtime,
        &guest,
        action("prints", r#"{"n": 3}"#),
        &caps,
        &Limits::default(),
    )
    .await;
    assert_eq!(json_output(&report), serde_json::json!("printed"));
    let records = logs.records();
    let printed = records
        .iter()
        .find(|record| record.message == "hello from print 3")
        .unwrap_or_else(|| panic!("print not in the log: {records:?}"));
    assert!(
        printed
            .fields
            .as_deref()
            .is_some_and(|fields| fields.contains("stdout")),
        "{printed:?}"
    );
}

#[tokio::test]
async fn a_five_megabyte_result_fits_the_default_budgets() {
    let runtime = python_runtime();
    let guest = hostile(&runtime);
    let five_mb = 5usize << 20;
    let input = format!(r#"{{"bytes": {five_mb}}}"#);
    let report = call(&runtime, &guest, "bigOutput", &input, &Limits::default()).await;
    match &report.outcome {
        Outcome::Completed {
            result: Returned::Output(output),
        } => match &output.data {
            Data::Json(text) => assert_eq!(text.len(), five_mb + 2),
            other => panic!("expected JSON, got {other:?}"),
        },
        other => panic!("expected a completed action, got {other:?}"),
    }
    let limits = Limits::default();
    assert!(report.metering.peak_memory_bytes < limits.memory_bytes);
    assert!(report.metering.fuel_used < limits.fuel);
    eprintln!(
        "5 MiB result: peak memory {} bytes, fuel {}, wall {:?}",
        report.metering.peak_memory_bytes, report.metering.fuel_used, report.metering.wall_time
    );

    // The same size as rows of objects, the shape of a real export, fits too.
    let input = format!(r#"{{"bytes": {five_mb}}}"#);
    let report = call(&runtime, &guest, "bigRows", &input, &Limits::default()).await;
    match &report.outcome {
        Outcome::Completed {
            result: Returned::Output(output),
        } => match &output.data {
            Data::Json(text) => {
                assert!(
                    text.len() > five_mb - 100 && text.len() <= five_mb,
                    "{}",
                    text.len()
                );
                let rows: serde_json::Value = serde_json::from_str(text).unwrap();
                assert_eq!(rows[0]["id"], 100_000);
            }
            other => panic!("expected JSON, got {other:?}"),
        },
        other => panic!("expected a completed action, got {other:?}"),
    }
    assert!(report.metering.peak_memory_bytes < limits.memory_bytes);
    assert!(report.metering.fuel_used < limits.fuel);
    eprintln!(
        "5 MiB of rows: peak memory {} bytes, fuel {}, wall {:?}",
        report.metering.peak_memory_bytes, report.metering.fuel_used, report.metering.wall_time
    );

    // Past the output budget, the same guest is refused by size, not by memory.
    let input = format!(r#"{{"bytes": {}}}"#, 9usize << 20);
    let report = call(&runtime, &guest, "bigOutput", &input, &Limits::default()).await;
    assert_eq!(
        report.outcome,
        Outcome::OutputTooLarge {
            size: (9 << 20) + 2,
            limit: 8 << 20
        }
    );
}

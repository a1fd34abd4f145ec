//! `sluice run` end to end: the real binary against the real example guests, checking
//! the JSON report on stdout, the one-line errors on stderr and the exit codes.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

fn guest(name: &str) -> PathBuf {
    sluice_runtime::guest_build::example(name).unwrap_or_else(|err| panic!("{err}"))
}

/// The artifact cache the tests' runs share, instead of the user's.
fn shared_cache() -> &'static std::path::Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"))
        .path()
}

fn sluice_with_stdin(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .env_remove("RUST_LOG")
        .env("SLUICE_CACHE_DIR", shared_cache())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sluice");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    child.wait_with_output().expect("wait for sluice")
}

fn sluice(args: &[&str]) -> Output {
    sluice_with_stdin(args, b"")
}

/// Runs `sluice run <guest> args...`.
fn run(guest_name: &str, args: &[&str]) -> Output {
    let path = guest(guest_name);
    let path = path.to_str().expect("UTF-8 guest path");
    let mut all = vec!["run", path];
    all.extend_from_slice(args);
    sluice(&all)
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("exited normally")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The report on stdout; also checks it is the only thing there.
fn report(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
        panic!(
            "stdout is not one JSON document ({err}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stdout),
            stderr(output)
        )
    })
}

/// The JSON data of a completed action or flow, parsed.
fn output_data(report: &Value) -> Value {
    assert_eq!(report["outcome"]["status"], "completed", "{report:#}");
    assert_eq!(report["outcome"]["result"]["kind"], "output", "{report:#}");
    let data = &report["outcome"]["result"]["value"]["data"];
    assert_eq!(data["type"], "json", "{report:#}");
    serde_json::from_str(data["value"].as_str().expect("JSON text")).expect("output data parses")
}

/// A usage error: exit 64, nothing on stdout, one `error: ` line naming the cause.
fn assert_usage_error(output: &Output, cause: &str) {
    let message = stderr(output);
    assert_eq!(code(output), 64, "stderr: {message}");
    assert!(
        output.stdout.is_empty(),
        "stdout: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(message.starts_with("error: "), "{message}");
    assert!(message.contains(cause), "expected `{cause}` in: {message}");
}

#[test]
fn echo_succeeds_and_reports_metering_and_logs() {
    let input = json!({"hello": "world", "n": [1, 2, 3]});
    let output = run(
        "hello",
        &["--action", "echo", "--input", &input.to_string()],
    );
    assert_eq!(code(&output), 0, "stderr: {}", stderr(&output));
    let report = report(&output);
    assert_eq!(output_data(&report), input);

    let bytes = std::fs::read(guest("hello")).expect("read hello.wasm");
    assert_eq!(
        report["component"]["hash"],
        hex::encode(Sha256::digest(&bytes))
    );
    assert_eq!(report["component"]["world"], "component");

    let metering = &report["metering"];
    assert!(
        metering["fuelUsed"].as_u64().expect("fuelUsed") > 0,
        "{metering}"
    );
    assert!(
        metering["peakMemoryBytes"]
            .as_u64()
            .expect("peakMemoryBytes")
            > 0
    );
    assert!(metering["wallTimeUs"].is_u64());

    let logs = report["logs"].as_array().expect("logs");
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert_eq!(logs[0]["level"], "info");
    assert_eq!(logs[0]["message"], "echo");
}

#[test]
fn guest_error_exits_1() {
    let output = run(
        "hello",
        &[
            "--action",
            "fail",
            "--input",
            r#"{"kind": "retryable", "message": "try again"}"#,
        ],
    );
    assert_eq!(code(&output), 1, "stderr: {}", stderr(&output));
    let report = report(&output);
    assert_eq!(report["outcome"]["status"], "guest-error");
    assert_eq!(report["outcome"]["error"]["kind"], "retryable");
    assert_eq!(report["outcome"]["error"]["message"], "try again");
}

#[test]
fn spin_runs_out_of_fuel_exactly() {
    let output = run("spin", &["--action", "run", "--fuel", "1000000"]);
    assert_eq!(code(&output), 2, "stderr: {}", stderr(&output));
    let report = report(&output);
    assert_eq!(
        report["outcome"],
        json!({"status": "out-of-fuel", "limit": 1_000_000})
    );
    assert_eq!(report["metering"]["fuelUsed"], 1_000_000);
}

#[test]
fn memory_bomb_hits_the_memory_limit() {
    let output = run("memory-bomb", &["--action", "run", "--memory", "16MiB"]);
    assert_eq!(code(&output), 2, "stderr: {}", stderr(&output));
    let report = report(&output);
    assert_eq!(report["outcome"]["status"], "memory-limit");
    assert_eq!(report["outcome"]["limit"], 16 << 20);
    let peak = report["metering"]["peakMemoryBytes"]
        .as_u64()
        .expect("peak");
    assert!(peak <= 16 << 20, "peak {peak}");
}

#[test]
fn a_budget_below_the_initial_memory_is_a_limit_not_a_load_error() {
    let output = run("hello", &["--action", "echo", "--memory", "64KiB"]);
    assert_eq!(code(&output), 2, "stderr: {}", stderr(&output));
    assert_eq!(report(&output)["outcome"]["status"], "memory-limit");
}

#[test]
fn spin_times_out() {
    let output = run(
        "spin",
        &[
            "--action",
            "run",
            "--timeout-ms",
            "200",
            "--fuel",
            "1000000000000000",
        ],
    );
    assert_eq!(code(&output), 2, "stderr: {}", stderr(&output));
    let report = report(&output);
    assert_eq!(
        report["outcome"],
        json!({"status": "timeout", "limitMs": 200})
    );
    let wall = report["metering"]["wallTimeUs"]
        .as_u64()
        .expect("wallTimeUs");
    assert!((200_000..2_000_000).contains(&wall), "wall time {wall} us");
}

#[test]
fn manifest_is_reported() {
    let output = run("hello", &["--manifest"]);
    assert_eq!(code(&output), 0, "stderr: {}", stderr(&output));
    let report = report(&output);
    assert_eq!(report["outcome"]["status"], "completed");
    assert_eq!(report["outcome"]["result"]["kind"], "manifest");
    let manifest: Value = serde_json::from_str(
        report["outcome"]["result"]["value"]
            .as_str()
            .expect("manifest text"),
    )
    .expect("manifest");
    assert_eq!(manifest["key"], "hello");
}

#[test]
fn data_source_is_called() {
    let output = run("hello", &["--data-source", "colors"]);
    assert_eq!(code(&output), 0, "stderr: {}", stderr(&output));
    let report = report(&output);
    assert_eq!(report["outcome"]["result"]["kind"], "data-source");
    let colors: Value = serde_json::from_str(
        report["outcome"]["result"]["value"]
            .as_str()
            .expect("JSON text"),
    )
    .expect("colors");
    assert_eq!(colors[0]["key"], "red");
}

#[test]
fn flow_payload_runs_a_code_native_flow() {
    let output = run("hello-flow", &["--payload", r#"{"order": 42}"#]);
    assert_eq!(code(&output), 0, "stderr: {}", stderr(&output));
    let report = report(&output);
    assert_eq!(report["component"]["world"], "flow");
    assert_eq!(output_data(&report), json!({"order": 42}));
}

#[test]
fn a_call_of_the_other_world_is_a_usage_error() {
    assert_usage_error(&run("hello", &["--payload", "{}"]), "world `component`");
    assert_usage_error(&run("hello-flow", &["--action", "echo"]), "world `flow`");
}

#[test]
fn input_file_dash_reads_stdin() {
    let path = guest("hello");
    let path = path.to_str().expect("UTF-8 guest path");
    let output = sluice_with_stdin(
        &["run", path, "--action", "echo", "--input-file", "-"],
        br#"{"from": "stdin"}"#,
    );
    assert_eq!(code(&output), 0, "stderr: {}", stderr(&output));
    assert_eq!(output_data(&report(&output)), json!({"from": "stdin"}));
}

#[test]
fn config_values_reach_the_guest() {
    let output = run(
        "hello",
        &[
            "--action",
            "whoami",
            "--config",
            "region=eu",
            "--config",
            r#"limits={"max": 3}"#,
        ],
    );
    assert_eq!(code(&output), 0, "stderr: {}", stderr(&output));
    let data = output_data(&report(&output));
    assert_eq!(
        data["config"],
        json!({"region": "eu", "limits": {"max": 3}})
    );
    assert_eq!(data["context"]["attempt"], 1);
}

#[test]
fn outbound_http_is_denied_outside_the_allow_list() {
    let output = run(
        "hello",
        &[
            "--action",
            "http-get",
            "--input",
            r#"{"url": "http://127.0.0.1:9/"}"#,
            "--allow-host",
            "https://api.example.com",
        ],
    );
    assert_eq!(code(&output), 1, "stderr: {}", stderr(&output));
    let report = report(&output);
    assert_eq!(report["outcome"]["status"], "guest-error");
    let message = report["outcome"]["error"]["message"]
        .as_str()
        .expect("message");
    assert!(message.contains("HttpRequestDenied"), "{message}");
}

#[test]
fn a_file_that_is_not_wasm_is_refused() {
    // Deterministic noise that cannot start with the wasm magic bytes.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0] | 1
        })
        .collect();
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli-run-noise.wasm");
    std::fs::write(&path, noise).expect("write noise");
    let output = sluice(&[
        "run",
        path.to_str().expect("UTF-8 path"),
        "--action",
        "echo",
    ]);
    assert_usage_error(&output, "not a WebAssembly binary");
}

#[test]
fn a_missing_file_is_refused() {
    let output = sluice(&["run", "/nonexistent/component.wasm", "--action", "echo"]);
    assert_usage_error(&output, "/nonexistent/component.wasm");
}

#[test]
fn a_forbidden_import_is_refused() {
    let output = run("forbidden-import", &["--action", "run"]);
    assert_usage_error(&output, "wasi:keyvalue/store");
    assert_eq!(
        stderr(&output).trim_end().lines().count(),
        1,
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_call_is_required() {
    let output = run("hello", &[]);
    assert_eq!(code(&output), 64, "stderr: {}", stderr(&output));
    assert!(output.stdout.is_empty());
    assert!(stderr(&output).contains("--action"), "{}", stderr(&output));
}

#[test]
fn calls_are_mutually_exclusive() {
    let output = run("hello", &["--manifest", "--action", "echo"]);
    assert_eq!(code(&output), 64, "stderr: {}", stderr(&output));
    let output = run("hello", &["--manifest", "--input", "{}"]);
    assert_eq!(code(&output), 64, "stderr: {}", stderr(&output));
}

#[test]
fn invalid_input_json_is_refused() {
    let output = run("hello", &["--action", "echo", "--input", "{not json"]);
    assert_usage_error(&output, "--input is not valid JSON");
}

#[test]
fn bad_option_values_are_usage_errors() {
    for args in [
        ["--memory", "64MB"],
        ["--fuel", "0"],
        ["--timeout-ms", "soon"],
        ["--allow-host", "ftp://example.com"],
        ["--config", "novalue"],
    ] {
        let mut all = vec!["--action", "echo"];
        all.extend_from_slice(&args);
        let output = run("hello", &all);
        assert_eq!(code(&output), 64, "{args:?}: {}", stderr(&output));
        assert!(
            stderr(&output).contains(args[0]),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn help_exits_0_and_documents_every_option() {
    let output = sluice(&["--help"]);
    assert_eq!(code(&output), 0);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("Usage: sluice"), "{text}");
    assert!(text.contains("run"), "{text}");

    let output = sluice(&["run", "--help"]);
    assert_eq!(code(&output), 0);
    let text = String::from_utf8_lossy(&output.stdout);
    for option in [
        "--action",
        "--manifest",
        "--data-source",
        "--payload",
        "--input ",
        "--input-file",
        "--config",
        "--allow-host",
        "--fuel",
        "--memory",
        "--timeout-ms",
        "--output-bytes",
        "--log-bytes",
        "Exit codes",
    ] {
        assert!(text.contains(option), "`{option}` missing from:\n{text}");
    }

    let output = sluice(&["--version"]);
    assert_eq!(code(&output), 0);
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("sluice "));
}

#[test]
fn a_component_compiles_once_across_runs() {
    let cache = tempfile::tempdir().expect("temp dir");
    let dir = cache.path().to_str().expect("UTF-8 temp dir");
    let hello = guest("hello");
    let hello = hello.to_str().expect("UTF-8 guest path");
    let call = ["run", hello, "--action", "echo", "--input", r#"{"n":1}"#];
    let with_cache = |extra: &[&str]| {
        let mut args = call.to_vec();
        args.extend_from_slice(extra);
        let output = sluice(&args);
        assert_eq!(code(&output), 0, "stderr: {}", stderr(&output));
        report(&output)["component"]["load"].clone()
    };
    let first = with_cache(&["--cache-dir", dir]);
    assert_eq!(first["origin"], "compiled", "{first}");
    assert!(first["compileTimeUs"].as_u64().unwrap() > 0, "{first}");
    let second = with_cache(&["--cache-dir", dir]);
    assert_eq!(second["origin"], "artifact-cache", "{second}");
    // --no-cache neither reads nor writes it, even named.
    let third = with_cache(&["--no-cache", "--cache-dir", dir]);
    assert_eq!(third["origin"], "compiled", "{third}");
}

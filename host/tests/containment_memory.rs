//! `sluice run` contains guests that make the host hold memory for them through
//! `wasi:http` resources: the body and fields bombs end with `memory-limit` (exit 2)
//! and the process's own peak RSS stays bounded, far below what the guests asked for.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

/// What the guests try to make the host hold: 1 GiB each.
const ASKED: &str = r#"{"mib": 1024}"#;
const RSS_BOUND: u64 = 512 << 20;

fn guest(name: &str) -> PathBuf {
    sluice_runtime::guest_build::example(name).unwrap_or_else(|err| panic!("{err}"))
}

fn run(guest_name: &str, input: &str) -> Output {
    let path = guest(guest_name);
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("run")
        .arg(&path)
        .args(["--action", "run", "--input", input, "--memory", "64MiB"])
        .env_remove("RUST_LOG")
        .output()
        .expect("run sluice")
}

fn report(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
        panic!(
            "stdout is not one JSON document ({err}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn assert_contained(guest_name: &str) {
    let output = run(guest_name, ASKED);
    let report = report(&output);
    assert_eq!(report["outcome"]["status"], "memory-limit", "{report:#}");
    assert_eq!(report["outcome"]["limit"], 64 << 20, "{report:#}");
    assert_eq!(output.status.code(), Some(2), "{report:#}");
    let peak = report["metering"]["peakMemoryBytes"]
        .as_u64()
        .expect("peak");
    assert!(peak <= 64 << 20, "peak {peak}");
    assert!(peak > 32 << 20, "peak {peak}: host memory is not counted");
    let rss = report["host"]["maxRssBytes"].as_u64().expect("maxRssBytes");
    assert!(rss > 0, "the kernel reported no RSS");
    assert!(
        rss < RSS_BOUND,
        "{guest_name}: sluice run reached {} MiB of RSS",
        rss >> 20
    );
}

#[test]
fn body_bomb_is_contained() {
    assert_contained("body-bomb");
}

#[test]
fn fields_bomb_is_contained() {
    assert_contained("fields-bomb");
}

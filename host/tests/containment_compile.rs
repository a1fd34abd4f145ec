//! Contained compilation, end to end with the real binary: a compile bomb
//! (`examples/hostile/compile-bomb`: a real component with a pathological core module
//! appended) is refused by `sluice run` (exit 64, the limit named, its own memory
//! small) and by `POST /v1/components` on a real `sluice serve` (422 `compile-limit`,
//! nothing stored) while the server keeps answering; a normal component still
//! uploads, records its compile cost and runs; one tenant's uploads wait for that
//! tenant's own compile slot.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use compile_bomb::Shape;
use serde_json::{Value, json};
use support::*;

/// Compile limits small enough that a bomb is refused within seconds.
const LIMITS: [&str; 4] = ["--compile-cpu-seconds", "2", "--compile-memory", "1GiB"];

fn hello() -> Vec<u8> {
    let path = sluice_runtime::guest_build::example("hello").unwrap_or_else(|err| panic!("{err}"));
    std::fs::read(path).expect("hello.wasm")
}

fn bomb(locals: u32) -> Vec<u8> {
    // Distinct shapes make distinct components, each compiled on its own.
    compile_bomb::arm(
        &hello(),
        Shape {
            locals,
            ..Shape::SERVER_KILLER
        },
    )
}

/// Peak resident memory of a live process (`VmHWM`), in bytes.
fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Live `sluice compile-worker` processes whose parent is `parent`.
fn compile_workers(parent: u32) -> usize {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|entry| {
            let dir = entry.path();
            let Ok(stat) = std::fs::read_to_string(dir.join("stat")) else {
                return false;
            };
            // `pid (comm) state ppid ...`: the command may hold spaces, the rest not.
            let Some(after) = stat.rsplit_once(')').map(|(_, after)| after.to_string()) else {
                return false;
            };
            let ppid: Option<u32> = after.split_whitespace().nth(1).and_then(|p| p.parse().ok());
            ppid == Some(parent)
                && std::fs::read(dir.join("cmdline")).is_ok_and(|cmdline| {
                    cmdline
                        .split(|b| *b == 0)
                        .any(|arg| arg == b"compile-worker")
                })
        })
        .count()
}

#[test]
fn sluice_run_refuses_a_compile_bomb_and_stays_small() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bomb.wasm");
    std::fs::write(&path, bomb(10_000)).unwrap();
    let mut child = Command::new(BIN)
        .arg("run")
        .arg(&path)
        .args(["--action", "echo", "--input", "{}"])
        .args(LIMITS)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sluice run starts");
    let pid = child.id();
    let mut peak = 0;
    let mut saw_worker = false;
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().expect("wait").is_none() {
        assert!(
            Instant::now() < deadline,
            "sluice run still running after 120 s"
        );
        peak = peak.max(peak_rss(pid).unwrap_or(0));
        saw_worker |= compile_workers(pid) > 0;
        std::thread::sleep(Duration::from_millis(10));
    }
    let output = child.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(64), "stderr: {stderr}");
    assert!(
        output.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(
        stderr.contains("compilation exceeded its")
            && (stderr.contains("CPU-time limit of 2 s")
                || stderr.contains("memory limit of 1024 MiB")),
        "{stderr}"
    );
    assert!(
        saw_worker,
        "no compile worker was seen: the bomb was compiled in process"
    );
    // The bomb asks for gigabytes; `sluice run` itself stays at its usual size.
    assert!(peak > 0, "no sample of sluice run's memory");
    assert!(peak < 256 << 20, "sluice run peaked at {} MiB", peak >> 20);
}

#[test]
fn sluice_run_compiles_a_normal_component_in_the_worker() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("small.wasm");
    std::fs::write(&path, compile_bomb::arm(&hello(), Shape::SMALL)).unwrap();
    let output = Command::new(BIN)
        .arg("run")
        .arg(&path)
        .args(["--action", "echo", "--input", r#"{"a":1}"#])
        .args(LIMITS)
        .env_remove("RUST_LOG")
        .output()
        .expect("sluice run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "stderr: {stderr}");
    let report: Value = serde_json::from_slice(&output.stdout).expect("a JSON report");
    assert_eq!(report["outcome"]["status"], "completed", "{report:#}");
    let rss = report["host"]["maxRssBytes"].as_u64().expect("maxRssBytes");
    assert!(rss > 0 && rss < 256 << 20, "{rss}");
}

async fn component_keys(client: &Client) -> Vec<Value> {
    let listed = client.get("/v1/components").await.expect(200).body;
    listed["components"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_refuses_a_compile_bomb_and_keeps_serving() {
    let server = Server::start_with(&LIMITS);
    let attacker = server.tenant("Attacker");
    let other = server.tenant("Other");
    other.upload_example("text").await;
    assert!(component_keys(&attacker).await.is_empty());

    let upload = {
        let attacker = attacker.clone();
        let bytes = bomb(10_000);
        tokio::spawn(async move {
            attacker
                .post_bytes("/v1/components", "application/wasm", bytes)
                .await
        })
    };
    // While the worker compiles, the server answers other requests.
    let pid = server.pid();
    let deadline = Instant::now() + Duration::from_secs(60);
    while compile_workers(pid) == 0 {
        assert!(
            !upload.is_finished(),
            "the upload ended before a worker was seen"
        );
        assert!(Instant::now() < deadline, "no compile worker started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut answered_during = 0;
    while compile_workers(pid) > 0 {
        let listed = component_keys(&other).await;
        assert_eq!(listed.len(), 1, "{listed:?}");
        if compile_workers(pid) > 0 {
            answered_during += 1;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        answered_during > 0,
        "no request was answered while the worker ran"
    );

    let reply = upload.await.unwrap();
    assert_eq!(reply.status, 422, "{}", reply.text);
    assert_eq!(
        reply.body["error"]["code"], "compile-limit",
        "{}",
        reply.text
    );
    let message = reply.body["error"]["message"].as_str().unwrap_or("");
    assert!(
        message.contains("CPU-time limit of 2 s") || message.contains("memory limit of 1024 MiB"),
        "{message}"
    );
    // Nothing stored: the list is unchanged, and no artifact was kept.
    assert!(component_keys(&attacker).await.is_empty());
    let artifacts = count_files(&server.data_dir.path().join("artifacts"));

    // A normal component still uploads, with what compiling it cost, and runs.
    let uploaded = attacker.upload_example("hello").await;
    assert!(
        uploaded["compile"]["timeUs"].as_i64().unwrap_or(0) > 0,
        "{uploaded:#}"
    );
    let peak = uploaded["compile"]["peakMemoryBytes"].as_i64().unwrap_or(0);
    assert!(peak > 1 << 20 && peak < 1 << 30, "{uploaded:#}");
    let fetched = attacker
        .get("/v1/components/hello/versions/1")
        .await
        .expect(200)
        .body;
    assert_eq!(fetched["compile"], uploaded["compile"]);
    assert_eq!(
        count_files(&server.data_dir.path().join("artifacts")),
        artifacts + 2,
        "the normal component's artifact and index entry"
    );
    attacker
        .publish(
            "responder",
            r#"
definitionVersion: 1
name: Responder
components:
  hello: {version: 1}
flows:
  - key: respond
    steps:
      - key: answer
        action: hello.respond
        inputs:
          status: 200
          body: {type: reference, value: trigger.results.body.text}
"#,
        )
        .await;
    let customer = attacker.customer("C").await;
    let instance = attacker
        .deploy_instance(
            &customer,
            "responder",
            json!({"flows": {"respond": {"synchronous": true}}}),
        )
        .await;
    let reply = deliver(
        &webhook_url(&instance, "respond"),
        &[("content-type".into(), "application/json".into())],
        br#"{"text": "still here"}"#.to_vec(),
    )
    .await
    .expect(200);
    assert_eq!(reply.text, "still here");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tenant_cannot_take_every_compile_slot() {
    // Two host slots, one per tenant: a tenant's second upload waits for its first,
    // leaving the other host slot to the other tenant.
    let mut args = LIMITS.to_vec();
    args.extend([
        "--compile-concurrency",
        "2",
        "--compile-concurrency-per-tenant",
        "1",
    ]);
    let server = Server::start_with(&args);
    let pid = server.pid();
    let busy = server.tenant("Busy");
    let patient = server.tenant("Patient");

    let started = Instant::now();
    let upload = |client: &Client, bytes: Vec<u8>| {
        let client = client.clone();
        tokio::spawn(async move {
            let reply = client
                .post_bytes("/v1/components", "application/wasm", bytes)
                .await;
            (reply, Instant::now())
        })
    };
    let first = upload(&busy, bomb(10_000));
    let second = upload(&busy, bomb(10_001));
    // Let both of Busy's uploads reach the compiler: with no per-tenant limit, both
    // would now hold a worker (and every host slot).
    let deadline = started + Duration::from_secs(60);
    while compile_workers(pid) == 0 {
        assert!(Instant::now() < deadline, "no compile worker started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut most = 0;
    for _ in 0..50 {
        most = most.max(compile_workers(pid));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(most, 1, "one tenant ran {most} compiles at once");

    let third = upload(&patient, bomb(10_002));
    let (first, first_done) = first.await.unwrap();
    let (second, second_done) = second.await.unwrap();
    let (third, third_done) = third.await.unwrap();
    for reply in [&first, &second, &third] {
        assert_eq!(reply.status, 422, "{}", reply.text);
        assert_eq!(
            reply.body["error"]["code"], "compile-limit",
            "{}",
            reply.text
        );
    }
    // Patient's compile ran beside Busy's first, not after both of Busy's.
    assert!(
        third_done < first_done.max(second_done),
        "the other tenant waited for both of Busy's compiles"
    );
}

fn count_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| {
            let path = entry.path();
            if path.is_dir() { count_files(&path) } else { 1 }
        })
        .sum()
}

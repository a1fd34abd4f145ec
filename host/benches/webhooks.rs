//! End to end: the real `sluice serve` answering webhooks over loopback, loaded by
//! `wrk` from another process, against a bare hyper server returning the same body on
//! the same machine (the floor, `sluice-hyper-floor` from `benches/src/bin/`).
//!
//! ```text
//! cargo bench -p sluice --bench webhooks                 # full run, about 2 minutes
//! cargo bench -p sluice --bench webhooks -- --quick      # a short run
//! cargo bench -p sluice --bench webhooks -- --seconds 5 --rounds 3 --connections 1,16,128 \
//!     --async-connections 16 --concurrency 256 --workers 64 --floor PATH --wrk PATH
//! ```
//!
//! What it does:
//!
//! 1. Starts `sluice serve` (this package's release binary) on a temporary data directory
//!    and a free loopback port, with `--webhook-rate-limit 0` (the per-URL limit would
//!    otherwise throttle the load) and the given `--concurrency` and `--workers` (the
//!    server's defaults unless told). Creates a tenant with `sluice tenant create`,
//!    uploads `examples/hello`, publishes an integration of two one-step flows (both a
//!    `hello.echo` step whose inputs are the request body's `id` and `name`): `sync`
//!    (`synchronous: true`) and `intake` (asynchronous), creates a customer and deploys
//!    an instance.
//! 2. Sends one request to the `sync` webhook and starts the floor with exactly the
//!    status, content type and body `sluice serve` answered; checks that the floor
//!    answers the same.
//! 3. Warms both up, then for each round, each connection count and each target (the
//!    order of the two targets alternating), runs `wrk -t1 -cN -dS` with a Lua script that
//!    POSTs `{"id":42,"name":"cold start"}` and prints wrk's totals and latency
//!    percentiles as JSON. Reports the median over the rounds of requests per second,
//!    p50 and p99 for each target and connection count, and the ratio sluice/floor.
//! 4. Then the asynchronous intake: `wrk` POSTs to the `intake` webhook at
//!    `--async-connections` for the same time per round and counts the 202s; every 202
//!    means the request and a queued execution row were committed to SQLite (WAL,
//!    `synchronous = NORMAL`). The workers run the queued executions meanwhile.
//!
//! Without `--bench` (as `cargo test --all-targets` runs bench binaries) it measures
//! nothing and exits at once: it needs `wrk` and minutes of load.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};

use serde_json::{Value, json};

/// The server binary under test.
const SLUICE: &str = env!("CARGO_BIN_EXE_sluice");
/// The floor's binary name, next to `sluice` in the target directory.
const FLOOR_BIN: &str = "sluice-hyper-floor";
/// The request body every webhook call sends.
const INPUT: &str = r#"{"id":42,"name":"cold start"}"#;
const LOCKFILE: &str = include_str!("../../Cargo.lock");

const USAGE: &str = "usage: webhooks [--quick] [--seconds S] [--warmup S] [--rounds N] [--connections 1,16,128]
                [--async-connections N] [--concurrency N] [--workers N] [--floor PATH] [--wrk PATH]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|arg| arg == "--bench") {
        println!(
            "webhooks: not run with --bench, so nothing is measured (it needs wrk and minutes of load); \
             run `cargo bench -p sluice --bench webhooks` or benches/run.sh"
        );
        return ExitCode::SUCCESS;
    }
    let options = match Options::parse(args.into_iter().filter(|arg| arg != "--bench")) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("webhooks: {message}");
            return ExitCode::from(64);
        }
    };
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("webhooks: {message}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Debug, Clone)]
struct Options {
    quick: bool,
    /// Length of one measured wrk run.
    seconds: u64,
    /// Length of each target's warm-up.
    warmup: u64,
    rounds: usize,
    connections: Vec<usize>,
    async_connections: usize,
    concurrency: u32,
    workers: usize,
    floor: Option<PathBuf>,
    wrk: String,
}

impl Options {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
        let mut options = Options {
            quick: false,
            seconds: 5,
            warmup: 2,
            rounds: 3,
            connections: vec![1, 16, 128],
            async_connections: 16,
            // `sluice serve`'s defaults.
            concurrency: 256,
            workers: 64,
            floor: None,
            wrk: "wrk".into(),
        };
        let mut explicit = Vec::new();
        while let Some(arg) = args.next() {
            let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
            match arg.as_str() {
                "--quick" => options.quick = true,
                "--seconds" => options.seconds = positive(&value()?)? as u64,
                "--warmup" => options.warmup = positive(&value()?)? as u64,
                "--rounds" => options.rounds = positive(&value()?)?,
                "--connections" => {
                    options.connections = value()?
                        .split(',')
                        .map(positive)
                        .collect::<Result<_, _>>()?
                }
                "--async-connections" => options.async_connections = positive(&value()?)?,
                "--concurrency" => {
                    options.concurrency = u32::try_from(positive(&value()?)?)
                        .map_err(|_| "--concurrency is too large".to_string())?
                }
                "--workers" => options.workers = positive(&value()?)?,
                "--floor" => options.floor = Some(PathBuf::from(value()?)),
                "--wrk" => options.wrk = value()?,
                "-h" | "--help" => return Err(USAGE.to_string()),
                other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
            }
            explicit.push(arg);
        }
        if options.quick {
            let given = |flag: &str| explicit.iter().any(|arg| arg == flag);
            if !given("--seconds") {
                options.seconds = 2;
            }
            if !given("--warmup") {
                options.warmup = 1;
            }
            if !given("--rounds") {
                options.rounds = 1;
            }
        }
        if options.connections.contains(&16) {
            Ok(options)
        } else {
            Err("--connections must include 16 (the target is stated at 16 connections)".into())
        }
    }
}

fn positive(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("expected a positive number, not `{text}`")),
    }
}

// --- Processes -----------------------------------------------------------------------

/// A child process killed (and reaped) on drop.
struct Process {
    child: Child,
    /// Held open: the floor exits when it closes.
    _stdin: Option<ChildStdin>,
    url: String,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads the `{"listening": URL}` line a server prints when it accepts connections.
fn listening(child: &mut Child, what: &str) -> Result<String, String> {
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| format!("{what}: no stdout"))?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|err| format!("{what}: cannot read its first line: {err}"))?;
    let started: Value = serde_json::from_str(&line)
        .map_err(|err| format!("{what} did not say where it listens ({err}): {line:?}"))?;
    started["listening"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("{what}: no `listening` in {line:?}"))
}

fn start_sluice(data_dir: &Path, options: &Options) -> Result<Process, String> {
    let log = std::fs::File::create(data_dir.join("server.log"))
        .map_err(|err| format!("cannot create the server log: {err}"))?;
    let mut child = Command::new(SLUICE)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir.join("data"))
        .args(["--webhook-rate-limit", "0"])
        .args(["--concurrency", &options.concurrency.to_string()])
        .args(["--workers", &options.workers.to_string()])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .map_err(|err| format!("cannot start {SLUICE}: {err}"))?;
    let url = listening(&mut child, "sluice serve")?;
    Ok(Process {
        child,
        _stdin: None,
        url,
    })
}

/// The floor binary: `--floor`, else next to `sluice`, else built with cargo.
fn floor_binary(options: &Options) -> Result<PathBuf, String> {
    if let Some(path) = &options.floor {
        return Ok(path.clone());
    }
    let beside = Path::new(SLUICE).with_file_name(FLOOR_BIN);
    if beside.exists() {
        return Ok(beside);
    }
    eprintln!("webhooks: building {FLOOR_BIN} (cargo build --release -p sluice-benches)");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("no workspace directory")?;
    let status = Command::new(cargo)
        .current_dir(workspace)
        .args([
            "build",
            "--release",
            "-p",
            "sluice-benches",
            "--bin",
            FLOOR_BIN,
        ])
        .status()
        .map_err(|err| format!("cannot run cargo: {err}"))?;
    if status.success() && beside.exists() {
        Ok(beside)
    } else {
        Err(format!(
            "cannot build {FLOOR_BIN}; build it with `cargo build --release -p sluice-benches --bin {FLOOR_BIN}` or pass --floor PATH"
        ))
    }
}

fn start_floor(binary: &Path, reply: &Probe) -> Result<Process, String> {
    let mut child = Command::new(binary)
        .args(["--listen", "127.0.0.1:0"])
        .args(["--status", &reply.status.to_string()])
        .args(["--content-type", &reply.content_type])
        .args(["--body", &reply.body])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|err| format!("cannot start {}: {err}", binary.display()))?;
    let stdin = child.stdin.take();
    let url = listening(&mut child, FLOOR_BIN)?;
    Ok(Process {
        child,
        _stdin: stdin,
        url,
    })
}

// --- Setting up the instance ---------------------------------------------------------

struct Webhooks {
    sync: String,
    intake: String,
}

fn create_tenant(data_dir: &Path) -> Result<String, String> {
    let output = Command::new(SLUICE)
        .args(["tenant", "create", "Bench", "--json", "--data-dir"])
        .arg(data_dir.join("data"))
        .output()
        .map_err(|err| format!("cannot run sluice tenant create: {err}"))?;
    if !output.status.success() {
        return Err(format!(
            "sluice tenant create failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let created: Value = serde_json::from_slice(&output.stdout)
        .map_err(|err| format!("sluice tenant create printed no JSON: {err}"))?;
    created["apiKey"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("no apiKey in {created}"))
}

/// The integration: two one-step flows of `hello.echo` on the request's `id` and `name`.
fn integration() -> Value {
    let steps = json!([{
        "key": "echo",
        "action": "hello.echo",
        "inputs": {
            "id": {"type": "reference", "value": "trigger.results.body.id"},
            "name": {"type": "reference", "value": "trigger.results.body.name"},
        },
    }]);
    json!({
        "definitionVersion": 1,
        "name": "Webhook bench",
        "components": {"hello": {"version": 1}},
        "flows": [
            {"key": "sync", "synchronous": true, "steps": steps},
            {"key": "intake", "steps": steps},
        ],
    })
}

async fn call(request: reqwest::RequestBuilder, what: &str) -> Result<Value, String> {
    let response = request
        .send()
        .await
        .map_err(|err| format!("{what}: {err}"))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|err| format!("{what}: {err}"))?;
    if !status.is_success() {
        return Err(format!("{what}: {status}: {text}"));
    }
    serde_json::from_str(&text).map_err(|err| format!("{what}: not JSON ({err}): {text}"))
}

async fn deploy(base: &str, key: &str) -> Result<Webhooks, String> {
    let http = reqwest::Client::new();
    let hello = sluice_runtime::guest_build::example("hello").map_err(|err| err.to_string())?;
    let bytes =
        std::fs::read(&hello).map_err(|err| format!("cannot read {}: {err}", hello.display()))?;
    call(
        http.post(format!("{base}/v1/components"))
            .bearer_auth(key)
            .header("content-type", "application/wasm")
            .body(bytes),
        "uploading hello",
    )
    .await?;
    call(
        http.post(format!("{base}/v1/integrations/webhook-bench/versions"))
            .bearer_auth(key)
            .header("content-type", "application/json")
            .body(integration().to_string()),
        "publishing the integration",
    )
    .await?;
    let customer = call(
        http.post(format!("{base}/v1/customers"))
            .bearer_auth(key)
            .json(&json!({"name": "Bench customer"})),
        "creating a customer",
    )
    .await?;
    let instance = call(
        http.post(format!("{base}/v1/instances"))
            .bearer_auth(key)
            .json(&json!({"customerId": customer["id"], "integration": "webhook-bench"})),
        "deploying the instance",
    )
    .await?;
    if instance["status"] != "deployed" {
        return Err(format!("the instance is not deployed: {instance}"));
    }
    let url = |flow: &str| {
        instance["flows"]
            .as_array()
            .and_then(|flows| flows.iter().find(|candidate| candidate["key"] == flow))
            .and_then(|found| found["webhookUrl"].as_str())
            .map(str::to_string)
            .ok_or_else(|| format!("no webhook URL for flow {flow} in {instance}"))
    };
    Ok(Webhooks {
        sync: url("sync")?,
        intake: url("intake")?,
    })
}

/// One response, as a caller sees it.
#[derive(Debug, Clone, PartialEq)]
struct Probe {
    status: u16,
    content_type: String,
    body: String,
}

async fn probe(url: &str) -> Result<Probe, String> {
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(INPUT)
        .send()
        .await
        .map_err(|err| format!("POST {url}: {err}"))?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = response
        .text()
        .await
        .map_err(|err| format!("POST {url}: {err}"))?;
    Ok(Probe {
        status,
        content_type,
        body,
    })
}

// --- wrk -----------------------------------------------------------------------------

/// The Lua script of every run: POST the input; print the totals as one JSON line.
/// With `count_202`, also count 202 answers (a `response` callback, which costs wrk
/// some speed: only the asynchronous intake, far below wrk's own limit, uses it).
fn wrk_script(count_202: bool) -> String {
    let mut script = format!(
        "wrk.method = \"POST\"\nwrk.body = '{INPUT}'\nwrk.headers[\"Content-Type\"] = \"application/json\"\n"
    );
    if count_202 {
        script.push_str(
            r#"local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) accepted = 0 end
function response(status, headers, body) if status == 202 then accepted = accepted + 1 end end
"#,
        );
    }
    script.push_str("function done(summary, latency, requests)\n");
    if count_202 {
        script.push_str(
            "  local accepted = 0\n  for _, thread in ipairs(threads) do accepted = accepted + thread:get(\"accepted\") end\n",
        );
    } else {
        script.push_str("  local accepted = -1\n");
    }
    script.push_str(
        r#"  local e = summary.errors
  io.write(string.format('WRK_JSON {"requests":%d,"duration_us":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,"status_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f,"accepted":%d}' .. "\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean, accepted))
end
"#,
    );
    script
}

/// What one wrk run measured.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Run {
    requests: u64,
    seconds: f64,
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// Connect, read, write errors, timeouts and non-2xx/3xx answers.
    errors: u64,
    /// 202 answers, when counted.
    accepted: Option<u64>,
}

impl Run {
    fn parse(stdout: &str) -> Result<Run, String> {
        let line = stdout
            .lines()
            .find_map(|line| line.strip_prefix("WRK_JSON "))
            .ok_or_else(|| format!("wrk printed no totals:\n{stdout}"))?;
        let totals: Value =
            serde_json::from_str(line).map_err(|err| format!("wrk's totals ({err}): {line}"))?;
        let number = |field: &str| {
            totals[field]
                .as_f64()
                .ok_or_else(|| format!("no {field} in wrk's totals: {line}"))
        };
        let requests = number("requests")? as u64;
        let seconds = number("duration_us")? / 1e6;
        let errors = [
            "connect_errors",
            "read_errors",
            "write_errors",
            "status_errors",
            "timeouts",
        ]
        .iter()
        .map(|field| number(field).map(|n| n as u64))
        .sum::<Result<u64, String>>()?;
        let accepted = number("accepted")?;
        Ok(Run {
            requests,
            seconds,
            per_second: if seconds > 0.0 {
                requests as f64 / seconds
            } else {
                0.0
            },
            p50_ms: number("p50_us")? / 1e3,
            p99_ms: number("p99_us")? / 1e3,
            errors,
            accepted: (accepted >= 0.0).then_some(accepted as u64),
        })
    }

    /// Requests per second that got the answer that counts (all, or only the 202s).
    fn good_per_second(&self) -> f64 {
        match self.accepted {
            Some(accepted) if self.seconds > 0.0 => accepted as f64 / self.seconds,
            Some(_) => 0.0,
            None => self.per_second,
        }
    }
}

struct Wrk {
    program: String,
    sync_script: PathBuf,
    async_script: PathBuf,
}

impl Wrk {
    fn new(program: &str, dir: &Path) -> Result<Wrk, String> {
        let sync_script = dir.join("post.lua");
        let async_script = dir.join("post-count-202.lua");
        std::fs::write(&sync_script, wrk_script(false))
            .and_then(|()| std::fs::write(&async_script, wrk_script(true)))
            .map_err(|err| format!("cannot write the wrk scripts: {err}"))?;
        Ok(Wrk {
            program: program.to_string(),
            sync_script,
            async_script,
        })
    }

    /// `wrk -v` prints its version (and exits 1).
    fn version(&self) -> Result<String, String> {
        let output = Command::new(&self.program)
            .arg("-v")
            .output()
            .map_err(|err| {
                format!(
                    "cannot run `{}` ({err}): install wrk (`apt-get install -y wrk`; benches/run.sh does) or pass --wrk PATH",
                    self.program
                )
            })?;
        let text = String::from_utf8_lossy(&output.stdout).to_string()
            + &String::from_utf8_lossy(&output.stderr);
        Ok(text
            .lines()
            .next()
            .unwrap_or("wrk")
            .split(" Copyright")
            .next()
            .unwrap_or("wrk")
            .trim()
            .to_string())
    }

    fn run(
        &self,
        url: &str,
        connections: usize,
        seconds: u64,
        count_202: bool,
    ) -> Result<Run, String> {
        let script = if count_202 {
            &self.async_script
        } else {
            &self.sync_script
        };
        let output = Command::new(&self.program)
            .args(["-t1", &format!("-c{connections}"), &format!("-d{seconds}s")])
            .args(["--timeout", "10s", "-s"])
            .arg(script)
            .arg(url)
            .stdin(Stdio::null())
            .output()
            .map_err(|err| format!("cannot run wrk: {err}"))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            return Err(format!(
                "wrk failed ({}): {stdout}{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Run::parse(&stdout)
    }
}

// --- Reporting -----------------------------------------------------------------------

fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    }
}

/// The rounds of one target at one connection count, summarised.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Summary {
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
}

fn summarise(runs: &[Run]) -> Summary {
    Summary {
        per_second: median(runs.iter().map(Run::good_per_second).collect()),
        p50_ms: median(runs.iter().map(|run| run.p50_ms).collect()),
        p99_ms: median(runs.iter().map(|run| run.p99_ms).collect()),
        errors: runs.iter().map(|run| run.errors).sum(),
    }
}

fn locked_version(name: &str) -> String {
    let mut lines = LOCKFILE.lines();
    while let Some(line) = lines.next() {
        if line == format!("name = \"{name}\"")
            && let Some(version) = lines
                .next()
                .and_then(|line| line.strip_prefix("version = \""))
        {
            return version.trim_end_matches('"').to_string();
        }
    }
    "unknown".into()
}

fn row(label: &str, connections: usize, summary: &Summary) -> String {
    format!(
        "{label:<36} {connections:>5} {:>10.0} {:>9.2} {:>9.2} {:>7}",
        summary.per_second, summary.p50_ms, summary.p99_ms, summary.errors
    )
}

// --- The run -------------------------------------------------------------------------

fn run(options: &Options) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|err| format!("no temporary directory: {err}"))?;
    let wrk = Wrk::new(&options.wrk, dir.path())?;
    let wrk_version = wrk.version()?;
    let floor_binary = floor_binary(options)?;
    let executor = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| format!("cannot start tokio: {err}"))?;

    // Built before the server starts, so the build does not run during the load.
    sluice_runtime::guest_build::example("hello").map_err(|err| err.to_string())?;
    let server = start_sluice(dir.path(), options)?;
    let key = create_tenant(dir.path())?;
    let webhooks = executor.block_on(deploy(&server.url, &key))?;
    let answer = executor.block_on(probe(&webhooks.sync))?;
    if answer.status != 200 || answer.body.is_empty() {
        return Err(format!(
            "the synchronous flow answered {answer:?}; see {}",
            dir.path().join("server.log").display()
        ));
    }
    let floor = start_floor(&floor_binary, &answer)?;
    let floor_answer = executor.block_on(probe(&floor.url))?;
    if floor_answer != answer {
        return Err(format!(
            "the floor answers {floor_answer:?}, sluice {answer:?}"
        ));
    }
    let queued = executor.block_on(probe(&webhooks.intake))?;
    if queued.status != 202 {
        return Err(format!("the asynchronous flow answered {queued:?}"));
    }

    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let mode = if options.quick { "quick" } else { "full" };
    println!("End to end: webhooks over loopback ({mode} run)");
    println!(
        "server:    sluice serve --concurrency {} --workers {} --webhook-rate-limit 0 (release build, SQLite in a temporary data directory; tokio worker threads: {cpus}, one per CPU)",
        options.concurrency, options.workers
    );
    println!(
        "floor:     {FLOOR_BIN}: bare hyper {} (http1::Builder + service_fn, multi-threaded tokio, {cpus} worker threads) answering every request with the same status, content type and body",
        locked_version("hyper")
    );
    println!(
        "load:      {wrk_version}, -t1 --timeout 10s, POST {INPUT} (Content-Type: application/json), {} s per run after a {} s warm-up per target, {} round(s), targets alternating",
        options.seconds, options.warmup, options.rounds
    );
    println!(
        "flows:     one step, hello.echo of the body's id and name; sync: `synchronous: true`, answers {} {} {}",
        answer.status, answer.content_type, answer.body
    );
    println!(
        "machine:   {cpus} CPUs shared by the server, wrk and anything else running; figures are medians over the rounds"
    );
    println!();

    let targets: [(&str, &str); 2] = [("floor", &floor.url), ("sluice", &webhooks.sync)];
    for (name, url) in targets {
        eprintln!("webhooks: warming up {name}");
        wrk.run(url, 16, options.warmup, false)?;
    }
    let mut results: Vec<(usize, Vec<Run>, Vec<Run>)> = options
        .connections
        .iter()
        .map(|&connections| (connections, Vec::new(), Vec::new()))
        .collect();
    for round in 0..options.rounds {
        for (connections, floor_runs, sluice_runs) in &mut results {
            let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            for index in order {
                let (name, url) = targets[index];
                eprintln!(
                    "webhooks: round {}/{}, {name}, {connections} connection(s)",
                    round + 1,
                    options.rounds
                );
                let measured = wrk.run(url, *connections, options.seconds, false)?;
                if index == 0 {
                    floor_runs.push(measured);
                } else {
                    sluice_runs.push(measured);
                }
            }
        }
    }

    println!(
        "Synchronous webhooks: a one-step flow answered in the request, against the bare hyper floor"
    );
    println!(
        "{:<36} {:>5} {:>10} {:>9} {:>9} {:>7}",
        "target", "conns", "req/s", "p50 ms", "p99 ms", "errors"
    );
    let mut at_16 = None;
    for (connections, floor_runs, sluice_runs) in &results {
        let floor_summary = summarise(floor_runs);
        let sluice_summary = summarise(sluice_runs);
        println!("{}", row("bare hyper floor", *connections, &floor_summary));
        println!(
            "{}",
            row(
                "sluice serve, sync 1-step flow",
                *connections,
                &sluice_summary
            )
        );
        let ratios: Vec<f64> = floor_runs
            .iter()
            .zip(sluice_runs)
            .map(|(floor, sluice)| sluice.per_second / floor.per_second.max(f64::MIN_POSITIVE))
            .collect();
        let ratio = sluice_summary.per_second / floor_summary.per_second.max(f64::MIN_POSITIVE);
        let range = if ratios.len() > 1 {
            format!(
                "   (per round: {:.3}x .. {:.3}x)",
                ratios.iter().copied().fold(f64::INFINITY, f64::min),
                ratios.iter().copied().fold(0.0, f64::max)
            )
        } else {
            String::new()
        };
        println!(
            "{:<36} {connections:>5} {:>9.3}x {:>8.1}x {:>8.1}x{range}",
            "ratio sluice/floor",
            ratio,
            sluice_summary.p50_ms / floor_summary.p50_ms.max(f64::MIN_POSITIVE),
            sluice_summary.p99_ms / floor_summary.p99_ms.max(f64::MIN_POSITIVE),
        );
        if *connections == 16 {
            at_16 = Some(ratio);
        }
    }
    if let Some(ratio) = at_16 {
        println!(
            "\nsync throughput sluice/floor at 16 connections: {ratio:.3}x   target >= 0.5x: {}",
            if ratio >= 0.5 { "met" } else { "missed" }
        );
    }

    let mut intake = Vec::new();
    for round in 0..options.rounds {
        eprintln!(
            "webhooks: round {}/{}, asynchronous intake, {} connections",
            round + 1,
            options.rounds,
            options.async_connections
        );
        intake.push(wrk.run(
            &webhooks.intake,
            options.async_connections,
            options.seconds,
            true,
        )?);
    }
    let summary = summarise(&intake);
    let accepted: u64 = intake.iter().filter_map(|run| run.accepted).sum();
    let requests: u64 = intake.iter().map(|run| run.requests).sum();
    println!();
    println!(
        "Asynchronous intake: 202 Accepted after the request and its queued execution are committed to SQLite (WAL, synchronous=NORMAL); the {} workers run the queued executions meanwhile",
        options.workers
    );
    println!(
        "{:<36} {:>5} {:>10} {:>9} {:>9} {:>7}",
        "target", "conns", "202/s", "p50 ms", "p99 ms", "errors"
    );
    println!(
        "{}",
        row(
            "sluice serve, async intake",
            options.async_connections,
            &summary
        )
    );
    println!(
        "{:<36} {:>5} {:>9.3}x   (202/s over the floor's req/s at {} connections; {accepted} of {requests} answers were 202)",
        "ratio intake/floor",
        options.async_connections,
        summary.per_second
            / results
                .iter()
                .find(|(connections, ..)| *connections == options.async_connections)
                .map_or(f64::NAN, |(_, floor_runs, _)| summarise(floor_runs)
                    .per_second),
        options.async_connections
    );
    drop(floor);
    drop(server);
    std::io::stdout()
        .flush()
        .map_err(|err| format!("cannot write the report: {err}"))?;
    // The temporary directory (the server's data) goes with `dir`.
    Ok(())
}

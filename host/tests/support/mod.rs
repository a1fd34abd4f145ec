//! A real `sluice serve` process for API tests: its own data directory, a free port,
//! tenants created with `sluice tenant create`, and a JSON client for its API.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

pub mod holding_sink;
pub mod hostile;
pub mod sync;

pub const BIN: &str = env!("CARGO_BIN_EXE_sluice");

/// A server process, killed on drop.
pub struct Server {
    pub url: String,
    pub data_dir: tempfile::TempDir,
    child: Child,
    /// Extra `sluice serve` flags, kept for restarts.
    args: Vec<String>,
}

/// What `Server::start*` passes unless told otherwise: the fakes the tests deploy
/// against (sinks, APIs) listen on loopback, which guests reach only when the
/// operator opens it.
const OPEN_LOOPBACK: [&str; 2] = ["--egress-allow-cidr", "127.0.0.0/8"];

impl Server {
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// Starts with extra `sluice serve` flags (for example `--minute-ms 100`), and
    /// loopback opened to guests' outbound HTTP.
    pub fn start_with(args: &[&str]) -> Server {
        let mut all = OPEN_LOOPBACK.to_vec();
        all.extend_from_slice(args);
        Server::start_exactly(&all)
    }

    /// Starts like [`Server::start_with`], logging at `info` into `log` (a file the
    /// test reads afterwards, e.g. to check that no secret was logged).
    pub fn start_logging_to(args: &[&str], log: &Path) -> Server {
        let mut all = OPEN_LOOPBACK.to_vec();
        all.extend_from_slice(args);
        let data_dir = tempfile::tempdir().expect("a temporary directory");
        let args: Vec<String> = all.iter().map(|arg| arg.to_string()).collect();
        let file = std::fs::File::create(log).expect("the log file");
        let (child, url) = spawn_with(data_dir.path(), &args, "info", Stdio::from(file));
        Server {
            url,
            data_dir,
            child,
            args,
        }
    }

    /// Starts with exactly these extra flags: no private range is opened to guests
    /// unless `args` opens it, as on a server with default settings.
    pub fn start_exactly(args: &[&str]) -> Server {
        let data_dir = tempfile::tempdir().expect("a temporary directory");
        let args: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
        let (child, url) = spawn(data_dir.path(), &args);
        Server {
            url,
            data_dir,
            child,
            args,
        }
    }

    /// Kills the process (SIGKILL, like a crash) and starts a new one on the same data.
    pub fn restart(&mut self) {
        self.kill();
        let (child, url) = spawn(self.data_dir.path(), &self.args);
        self.child = child;
        self.url = url;
    }

    /// Kills the process with SIGKILL and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The process id (for signals sent by a test).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Creates a tenant; returns a client authenticated as it.
    pub fn tenant(&self, name: &str) -> Client {
        self.tenant_with_id(name).0
    }

    /// Creates a tenant; returns a client authenticated as it, and the tenant's id.
    pub fn tenant_with_id(&self, name: &str) -> (Client, String) {
        let output = Command::new(BIN)
            .args(["tenant", "create", name, "--json", "--data-dir"])
            .arg(self.data_dir.path())
            .output()
            .expect("sluice tenant create runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let created: Value = serde_json::from_slice(&output.stdout).expect("JSON output");
        let client = Client {
            base: self.url.clone(),
            key: created["apiKey"].as_str().expect("an API key").to_string(),
            http: reqwest::Client::new(),
        };
        let id = created["id"].as_str().expect("a tenant id").to_string();
        (client, id)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(data_dir: &Path, args: &[String]) -> (Child, String) {
    spawn_with(data_dir, args, "warn", Stdio::inherit())
}

fn spawn_with(data_dir: &Path, args: &[String], level: &str, stderr: Stdio) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(args)
        .env("RUST_LOG", level)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("sluice serve starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("the server prints where it listens");
    let started: Value = serde_json::from_str(&line).unwrap_or_else(|err| panic!("{err}: {line}"));
    let url = started["listening"]
        .as_str()
        .expect("listening")
        .to_string();
    (child, url)
}

/// A tenant's API client.
#[derive(Clone)]
pub struct Client {
    pub base: String,
    pub key: String,
    pub http: reqwest::Client,
}

/// A response: status and parsed JSON body (`Value::Null` when not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    async fn of(response: reqwest::Response) -> Reply {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    /// Panics with the body unless the status is `expected`.
    pub fn expect(self, expected: u16) -> Reply {
        assert_eq!(self.status, expected, "{}", self.text);
        self
    }
}

impl Client {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> Reply {
        Reply::of(
            self.http
                .get(self.url(path))
                .bearer_auth(&self.key)
                .send()
                .await
                .expect("GET"),
        )
        .await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        Reply::of(
            self.http
                .delete(self.url(path))
                .bearer_auth(&self.key)
                .send()
                .await
                .expect("DELETE"),
        )
        .await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        Reply::of(
            self.http
                .post(self.url(path))
                .bearer_auth(&self.key)
                .json(body)
                .send()
                .await
                .expect("POST"),
        )
        .await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Reply {
        Reply::of(
            self.http
                .put(self.url(path))
                .bearer_auth(&self.key)
                .json(body)
                .send()
                .await
                .expect("PUT"),
        )
        .await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Reply {
        Reply::of(
            self.http
                .patch(self.url(path))
                .bearer_auth(&self.key)
                .json(body)
                .send()
                .await
                .expect("PATCH"),
        )
        .await
    }

    pub async fn post_bytes(&self, path: &str, content_type: &str, body: Vec<u8>) -> Reply {
        Reply::of(
            self.http
                .post(self.url(path))
                .bearer_auth(&self.key)
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .expect("POST"),
        )
        .await
    }

    /// Uploads an example component; returns its registry version.
    pub async fn upload_example(&self, name: &str) -> Value {
        let path: PathBuf =
            sluice_runtime::guest_build::example(name).unwrap_or_else(|err| panic!("{err}"));
        let bytes = std::fs::read(path).expect("the built example");
        let reply = self
            .post_bytes("/v1/components", "application/wasm", bytes)
            .await;
        assert!(reply.status == 200 || reply.status == 201, "{}", reply.text);
        reply.body
    }

    /// Polls an execution until it is no longer queued or running.
    pub async fn finished_execution(&self, id: &str) -> Value {
        for _ in 0..400 {
            let reply = self.get(&format!("/v1/executions/{id}")).await.expect(200);
            let status = reply.body["status"].as_str().unwrap_or("");
            if status != "queued" && status != "running" {
                return reply.body;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("execution {id} did not finish");
    }
}

/// Sends a webhook delivery (no API credentials: webhooks are public URLs).
pub async fn deliver(url: &str, headers: &[(String, String)], body: Vec<u8>) -> Reply {
    let mut request = reqwest::Client::new().post(url).body(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    Reply::of(request.send().await.expect("webhook POST")).await
}

/// Sends a JSON webhook delivery on a shared (pooled) HTTP client. A transport error
/// comes back as `Err` instead of a panic: when a test kills the server, requests in
/// flight fail and the caller decides what that means.
pub async fn try_deliver(
    http: &reqwest::Client,
    url: &str,
    body: Vec<u8>,
) -> Result<Reply, reqwest::Error> {
    let response = http
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await?;
    Ok(Reply::of(response).await)
}

/// The execution id a webhook answer names: the `sluice-execution-id` header, which
/// is there even when the body could not be read.
pub fn execution_id_of(reply: &Reply) -> Option<String> {
    reply
        .headers
        .get("sluice-execution-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_string)
        .or_else(|| reply.body["executionId"].as_str().map(str::to_string))
}

impl Client {
    /// Every execution of this tenant that matches `filter` (query parameters such as
    /// `instanceId=...`), following the cursor through all pages.
    pub async fn all_executions(&self, filter: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/v1/executions?limit=500&{filter}");
            if let Some(cursor) = &cursor {
                path.push_str(&format!("&cursor={cursor}"));
            }
            let page = self.get(&path).await.expect(200).body;
            items.extend(page["items"].as_array().cloned().unwrap_or_default());
            match page["nextCursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => return items,
            }
        }
    }

    /// Waits until none of this tenant's executions is queued, waiting (behind a FIFO
    /// head) or running; panics after `timeout`. Call it once nothing new is accepted:
    /// the statuses are read in the order an execution moves through them, so one
    /// moving on between two reads is not missed.
    pub async fn wait_until_idle(&self, timeout: std::time::Duration) {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let mut busy = false;
            for status in ["waiting", "queued", "running"] {
                let page = self
                    .get(&format!("/v1/executions?status={status}&limit=1"))
                    .await
                    .expect(200)
                    .body;
                busy |= page["items"]
                    .as_array()
                    .is_some_and(|items| !items.is_empty());
            }
            if !busy {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "executions still queued or running after {timeout:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
}

/// A loopback HTTP service standing in for the API a flow calls. It keeps every body
/// POSTed to it (JSON, else the text) in arrival order and answers each after `delay`,
/// so executions stay in flight long enough to be caught by a crash or a flood.
pub struct Sink {
    pub url: String,
    received: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Sink {
    pub async fn start(delay: std::time::Duration) -> Sink {
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = std::sync::Arc::clone(&received);
        let router = axum::Router::new().route(
            "/",
            axum::routing::post(move |body: axum::body::Bytes| {
                let kept = std::sync::Arc::clone(&kept);
                async move {
                    // Kept on arrival, before the delay: the side effect happened
                    // whether or not the caller lives to read the answer.
                    let value = serde_json::from_slice(&body).unwrap_or_else(|_| {
                        Value::String(String::from_utf8_lossy(&body).into_owned())
                    });
                    kept.lock().expect("sink lock").push(value);
                    tokio::time::sleep(delay).await;
                    axum::Json(serde_json::json!({"ok": true}))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding a loopback port for the sink");
        let addr = listener.local_addr().expect("the sink's address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Sink {
            url: format!("http://{addr}"),
            received,
            task,
        }
    }

    /// Every body received so far.
    pub fn received(&self) -> Vec<Value> {
        self.received.lock().expect("sink lock").clone()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Publishes integration `sink-relay` (its flow `relay`: `hello.whoami`, then
/// `http.request` POSTing `{n, executionId}` to the sink, `n` from the webhook's JSON
/// body), uploading `hello` and `http` first, and deploys an instance of it whose
/// allow-list names only the sink. Returns the instance.
pub async fn deploy_sink_relay(client: &Client, sink_url: &str) -> Value {
    client.upload_example("hello").await;
    client.upload_example("http").await;
    let definition = r#"
definitionVersion: 1
name: Sink relay
components:
  hello: {version: 1}
  http: {version: 1}
configVars:
  - key: Sink Url
flows:
  - key: relay
    steps:
      - key: whoami
        action: hello.whoami
        inputs: {}
      - key: post
        action: http.request
        inputs:
          method: POST
          url: {type: configVar, value: Sink Url}
          json:
            type: complex
            value:
              n: {type: reference, value: trigger.results.body.n}
              executionId: {type: reference, value: whoami.results.context.executionId}
          timeoutMs: 30000
          failOnError: true
"#;
    client.publish("sink-relay", definition).await;
    let customer = client.customer("Sink customer").await;
    client
        .deploy_instance(
            &customer,
            "sink-relay",
            serde_json::json!({
                "config": {"Sink Url": format!("{sink_url}/")},
                "allowedHosts": [sink_url],
            }),
        )
        .await
}

impl Client {
    /// Publishes `definition` (YAML) as the next version of integration `key`.
    pub async fn publish(&self, key: &str, definition: &str) -> Value {
        let reply = self
            .post_bytes(
                &format!("/v1/integrations/{key}/versions"),
                "application/yaml",
                definition.as_bytes().to_vec(),
            )
            .await;
        assert!(reply.status == 201 || reply.status == 200, "{}", reply.text);
        reply.body
    }

    /// Uploads the components of the declarative GitHub-to-Zendesk sync and publishes
    /// it as integration `github-zendesk`.
    pub async fn publish_github_zendesk(&self) {
        for name in ["github", "zendesk", "text"] {
            self.upload_example(name).await;
        }
        let definition = std::fs::read_to_string(
            sluice_runtime::guest_build::examples_dir()
                .join("flows")
                .join("github-zendesk-sync.yaml"),
        )
        .expect("the example integration");
        self.publish("github-zendesk", &definition).await;
    }

    /// Creates a customer; returns its id.
    pub async fn customer(&self, name: &str) -> String {
        let customer = self
            .post("/v1/customers", &serde_json::json!({"name": name}))
            .await
            .expect(201)
            .body;
        customer["id"].as_str().expect("a customer id").to_string()
    }

    /// Deploys an instance of `integration` for `customer`, with the other fields of
    /// the request in `fields` (`config`, `allowedHosts`, ...); asserts it deployed.
    pub async fn deploy_instance(&self, customer: &str, integration: &str, fields: Value) -> Value {
        let mut body = serde_json::json!({"customerId": customer, "integration": integration});
        if let (Some(body), Value::Object(fields)) = (body.as_object_mut(), fields) {
            body.extend(fields);
        }
        let instance = self.post("/v1/instances", &body).await.expect(201).body;
        assert_eq!(instance["status"], "deployed", "{instance}");
        instance
    }
}

/// The webhook URL of `flow` in an instance (as the server gave it out).
pub fn webhook_url(instance: &Value, flow: &str) -> String {
    instance["flows"]
        .as_array()
        .and_then(|flows| flows.iter().find(|candidate| candidate["key"] == flow))
        .and_then(|found| found["webhookUrl"].as_str())
        .unwrap_or_else(|| panic!("no webhook for flow {flow} in {instance}"))
        .to_string()
}

/// The path (from `/webhooks/`) of `flow`'s webhook URL in an instance, to be joined
/// to whatever address the server listens on now (a restart picks a new port).
pub fn webhook_path(instance: &Value, flow: &str) -> String {
    let url = webhook_url(instance, flow);
    let start = url
        .find("/webhooks/")
        .unwrap_or_else(|| panic!("not a webhook URL: {url}"));
    url[start..].to_string()
}

/// The `main` of a benchmark built on this support: the quick or full sizes (see
/// [`bench_is_quick`]; a usage error exits 64), a two-worker tokio runtime like the
/// machine's, and `run`'s error printed under the benchmark's `name`.
pub fn bench_main<S, F, Fut>(
    name: &str,
    usage: &str,
    quick: S,
    full: S,
    run: F,
) -> std::process::ExitCode
where
    F: FnOnce(S) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    use std::process::ExitCode;
    let sizes = match bench_is_quick(usage) {
        Ok(true) => quick,
        Ok(false) => full,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(64);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("cannot start tokio: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(sizes)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{name}: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The value at quantile `q` of `sorted` (nearest rank); the default when empty.
pub fn nearest_rank<T: Copy + Default>(sorted: &[T], q: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Whether a benchmark built on this support (`host/benches/`) makes its quick run:
/// `cargo bench` passes `--bench`; without it (`cargo test --all-targets`, or the
/// binary run by hand) the run is quick, as is one given `--quick` or
/// `SLUICE_BENCH_QUICK=1`. An unknown flag or `--help` gives `usage` back as the error.
pub fn bench_is_quick(usage: &str) -> Result<bool, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick_env = std::env::var("SLUICE_BENCH_QUICK").is_ok_and(|value| value == "1");
    for arg in &args {
        match arg.as_str() {
            "--bench" | "--quick" => {}
            "--help" | "-h" => return Err(usage.to_string()),
            // Cargo passes test-name filters through; there is one measurement.
            other if !other.starts_with('-') => {}
            other => return Err(format!("unknown argument `{other}`\n{usage}")),
        }
    }
    let bench_mode = args.iter().any(|arg| arg == "--bench");
    Ok(quick_env || !bench_mode || args.iter().any(|arg| arg == "--quick"))
}

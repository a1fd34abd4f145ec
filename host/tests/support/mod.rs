//! A real `sluice serve` process for API tests: its own data directory, a free port,
//! tenants created with `sluice tenant create`, and a JSON client for its API.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_sluice");

/// A server process, killed on drop.
pub struct Server {
    pub url: String,
    pub data_dir: tempfile::TempDir,
    child: Child,
    /// Extra `sluice serve` flags, kept for restarts.
    args: Vec<String>,
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// Starts with extra `sluice serve` flags (for example `--minute-ms 100`).
    pub fn start_with(args: &[&str]) -> Server {
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
        Client {
            base: self.url.clone(),
            key: created["apiKey"].as_str().expect("an API key").to_string(),
            http: reqwest::Client::new(),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(data_dir: &Path, args: &[String]) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
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

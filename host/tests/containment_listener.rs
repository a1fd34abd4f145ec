//! Listener limits (issue 10, finding 8), against the real `sluice serve` over
//! loopback: 1,100 half-sent requests do not take the server's descriptors (it raises
//! its soft limit at start and caps connections under it) and `/v1/health` keeps
//! answering; a connection that never finishes its header is closed after the header
//! read timeout; a body that does not arrive in time is answered 408; past the
//! connection cap, new connections wait instead of failing the server.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{BIN, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Half-sent requests held open at once: more than the 1,024 descriptors of a
/// default soft limit.
const HALF_SENT: usize = 1_100;

/// A bound on waiting for what the server should do in a few seconds; only reached
/// when something is broken (these tests assert no tight times).
const PATIENCE: Duration = Duration::from_secs(30);

/// A `sluice serve` started with the soft descriptor limit at 1,024 (as many systems
/// start processes), killed on drop.
struct LowLimitServer {
    url: String,
    addr: String,
    child: Child,
    _data_dir: tempfile::TempDir,
}

impl LowLimitServer {
    fn start(args: &[&str]) -> LowLimitServer {
        let data_dir = tempfile::tempdir().expect("a temporary directory");
        let mut command = format!(
            "ulimit -Sn 1024 && exec '{BIN}' serve --listen 127.0.0.1:0 --data-dir '{}'",
            data_dir.path().display()
        );
        for arg in args {
            command.push_str(&format!(" '{arg}'"));
        }
        let mut child = Command::new("sh")
            .args(["-c", &command])
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
        let started: Value =
            serde_json::from_str(&line).unwrap_or_else(|err| panic!("{err}: {line}"));
        let url = started["listening"]
            .as_str()
            .expect("listening")
            .to_string();
        let addr = url.trim_start_matches("http://").to_string();
        LowLimitServer {
            url,
            addr,
            child,
            _data_dir: data_dir,
        }
    }
}

impl Drop for LowLimitServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// This test process needs a descriptor per half-sent connection too.
fn raise_own_limit(needed: usize) {
    let limit = sluice::process::raise_open_files_limit().expect("the descriptor limit");
    assert!(
        usize::try_from(limit).unwrap_or(usize::MAX) > needed + 200,
        "this test needs more than {needed} open files; the hard limit is {limit}"
    );
}

/// Opens a connection and sends the start of a request head, never its end.
async fn half_sent(addr: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"GET /v1/health HTTP/1.1\r\nHost: sluice\r\nX-Slow: ")
        .await
        .expect("a partial head");
    stream
}

/// `GET /v1/health` on a fresh connection, with a bound: the status, or why not.
async fn health(url: &str, within: Duration) -> Result<u16, String> {
    let client = reqwest::Client::builder()
        .timeout(within)
        .pool_max_idle_per_host(0)
        .build()
        .map_err(|err| err.to_string())?;
    client
        .get(format!("{url}/v1/health"))
        .send()
        .await
        .map(|response| response.status().as_u16())
        .map_err(|err| format!("{err:?}"))
}

/// Reads until the server closes the connection (or `PATIENCE` passes); returns what
/// it sent.
async fn read_until_closed(stream: &mut TcpStream) -> Result<String, String> {
    let mut seen = Vec::new();
    let read = tokio::time::timeout(PATIENCE, async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    let text = String::from_utf8_lossy(&seen).into_owned();
    match read {
        Ok(()) => Ok(text),
        Err(_) => Err(format!("still open after {PATIENCE:?} (sent {text:?})")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_answers_while_1100_half_sent_requests_are_held() {
    raise_own_limit(HALF_SENT);
    // A header timeout longer than the test: the connections stay held, so what keeps
    // the server answering is the descriptor limit it raised and its connection cap.
    let server = LowLimitServer::start(&["--header-read-timeout-ms", "600000"]);
    assert_eq!(health(&server.url, PATIENCE).await, Ok(200));
    let mut held = Vec::with_capacity(HALF_SENT);
    for _ in 0..HALF_SENT {
        held.push(half_sent(&server.addr).await);
    }
    // Every one is accepted by now or queued behind the others in the backlog; a few
    // rounds of health checks all answer.
    for round in 0..10 {
        assert_eq!(
            health(&server.url, Duration::from_secs(10)).await,
            Ok(200),
            "round {round} with {HALF_SENT} half-sent requests held"
        );
    }
    // And the held connections were served by the server, not left in its backlog:
    // the last one opened gets the answer to its finished request.
    let last = held.last_mut().expect("a held connection");
    last.write_all(b"1\r\nConnection: close\r\n\r\n")
        .await
        .expect("finishing the head");
    let answer = read_until_closed(last).await.expect("an answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_sent_or_silent_connection_is_closed_after_the_header_timeout() {
    let server = Server::start_with(&["--header-read-timeout-ms", "1000"]);
    let addr = server.url.trim_start_matches("http://").to_string();
    let started = Instant::now();
    let mut partial = half_sent(&addr).await;
    let mut silent = TcpStream::connect(&addr).await.expect("connect");
    let sent = read_until_closed(&mut partial).await.expect("closed");
    assert!(!sent.starts_with("HTTP/1.1 200"), "{sent}");
    read_until_closed(&mut silent).await.expect("closed");
    // Not before the timeout (a loose lower bound, no upper one but PATIENCE).
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(health(&server.url, PATIENCE).await, Ok(200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_does_not_arrive_in_time_is_answered_408() {
    let server = Server::start_with(&["--body-read-timeout-ms", "1000"]);
    let client = server.tenant("Acme");
    let addr = server.url.trim_start_matches("http://").to_string();
    let mut stream = TcpStream::connect(&addr).await.expect("connect");
    let head = format!(
        "POST /v1/customers HTTP/1.1\r\nHost: sluice\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"na",
        client.key
    );
    stream
        .write_all(head.as_bytes())
        .await
        .expect("a head and the start of a body");
    let answer = read_until_closed(&mut stream).await.expect("an answer");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("body-timeout"), "{answer}");
    // Nothing was created from the cut-off body.
    let customers = client.get("/v1/customers").await.expect(200).body;
    assert_eq!(
        customers["customers"].as_array().map(Vec::len),
        Some(0),
        "{customers}"
    );
    // A body that arrives in time is not affected.
    client
        .post("/v1/customers", &serde_json::json!({"name": "On time"}))
        .await
        .expect(201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_new_connections_wait_until_one_closes() {
    const CAP: usize = 16;
    let server = Server::start_with(&[
        "--max-connections",
        "16",
        "--header-read-timeout-ms",
        "600000",
    ]);
    let addr = server.url.trim_start_matches("http://").to_string();
    let mut held = Vec::new();
    for _ in 0..CAP {
        held.push(half_sent(&addr).await);
    }
    // Every connection the server holds is taken: a new one is not served...
    let refused = health(&server.url, Duration::from_secs(2)).await;
    assert!(refused.is_err(), "answered past the cap: {refused:?}");
    // ...until one closes.
    held.clear();
    assert_eq!(health(&server.url, PATIENCE).await, Ok(200));
}

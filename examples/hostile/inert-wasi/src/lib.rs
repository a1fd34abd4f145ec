//! `inert-wasi`: a guest that tries every way out that `wasi:filesystem` and
//! `wasi:sockets` would offer a real process: open files, list the root directory,
//! connect over TCP, send over UDP, resolve a name, read the environment. The host
//! links those interfaces only so that standard runtimes load (componentize-js and
//! componentize-py import them), so every attempt must fail. The action reports what
//! each attempt got, as JSON, for the tests to check: `{"tcp": "error: ...", ...}`.
//!
//! Input: `{"tcp": "127.0.0.1:PORT"}`, a listener the test holds open, so a refusal
//! cannot be mistaken for nobody listening.

use std::io::Read;
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};

use hostile_support::{Data, Error, Output};
use serde_json::{Map, Value, json};

hostile_support::hostile_connector!(
    key: "inert-wasi",
    description: "Tries files, sockets, name lookup and the environment.",
    run: run,
);

fn outcome<T, E: std::fmt::Display>(result: Result<T, E>, ok: impl FnOnce(T) -> String) -> Value {
    match result {
        Ok(value) => json!(format!("ok: {}", ok(value))),
        Err(err) => json!(format!("error: {err}")),
    }
}

fn run(input: String) -> Result<Output, Error> {
    let input: Value = serde_json::from_str(&input)
        .map_err(|e| Error::InvalidInput(format!("input is not JSON: {e}")))?;
    let tcp_target = input
        .get("tcp")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::InvalidInput("`tcp` (host:port) is required".into()))?
        .to_string();

    let mut report = Map::new();
    report.insert(
        "tcp".into(),
        outcome(TcpStream::connect(&tcp_target), |_| "connected".into()),
    );
    report.insert(
        "udp".into(),
        outcome(
            UdpSocket::bind("0.0.0.0:0").and_then(|socket| socket.send_to(b"x", &tcp_target)),
            |n| format!("sent {n} bytes"),
        ),
    );
    report.insert(
        "lookup".into(),
        outcome("localhost:80".to_socket_addrs(), |addrs| {
            format!("{} addresses", addrs.count())
        }),
    );
    for (name, path) in [("passwd", "/etc/passwd"), ("relative", "Cargo.toml")] {
        report.insert(
            name.into(),
            outcome(
                std::fs::File::open(path).and_then(|mut file| {
                    let mut text = String::new();
                    file.read_to_string(&mut text).map(|_| text.len())
                }),
                |n| format!("read {n} bytes"),
            ),
        );
    }
    report.insert(
        "rootDir".into(),
        outcome(std::fs::read_dir("/"), |entries| {
            format!("{} entries", entries.count())
        }),
    );
    report.insert(
        "createFile".into(),
        outcome(std::fs::write("/tmp/sluice-guest", b"x"), |()| {
            "written".into()
        }),
    );
    report.insert("env".into(), json!(std::env::vars().count()));

    Ok(Output {
        data: Data::Json(Value::Object(report).to_string()),
        content_type: None,
        status: None,
        headers: Vec::new(),
        branch: None,
    })
}

//! `sluice-hyper-floor`: the floor of the end-to-end webhook benchmark
//! (`cargo bench -p sluice --bench webhooks`): a bare hyper 1 HTTP/1.1 server that
//! answers every request, whatever its method and path, with one fixed response after
//! reading the request body, as `sluice serve` reads a webhook's body. No routing, no
//! storage, no execution: the least any Rust server on this machine does per request.
//!
//! ```text
//! sluice-hyper-floor [--listen 127.0.0.1:0] [--status 200] [--content-type TYPE] [--body TEXT]
//! ```
//!
//! It runs on a multi-threaded tokio runtime with the default number of worker threads
//! (one per CPU), as `sluice serve` does, and serves each connection with
//! `hyper::server::conn::http1` as hyper's own examples do. It prints
//! `{"listening":"http://ADDR"}` on stdout once it accepts connections, and exits when
//! its standard input closes (the benchmark holds it open), so that it never outlives
//! the benchmark.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::ExitCode;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncReadExt as _;
use tokio::net::TcpListener;

const USAGE: &str =
    "usage: sluice-hyper-floor [--listen ADDR] [--status N] [--content-type TYPE] [--body TEXT]";

/// The one response every request gets.
#[derive(Clone)]
struct Reply {
    status: StatusCode,
    content_type: HeaderValue,
    body: Bytes,
}

struct Args {
    listen: SocketAddr,
    reply: Reply,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut listen: SocketAddr = ([127, 0, 0, 1], 0).into();
    let mut status = StatusCode::OK;
    let mut content_type = HeaderValue::from_static("application/json");
    let mut body = Bytes::from_static(br#"{"id":42,"name":"cold start"}"#);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--listen" => {
                let text = value()?;
                listen = text
                    .parse()
                    .map_err(|_| format!("--listen needs an address, not `{text}`"))?;
            }
            "--status" => {
                let text = value()?;
                status = text
                    .parse::<u16>()
                    .ok()
                    .and_then(|code| StatusCode::from_u16(code).ok())
                    .ok_or_else(|| format!("--status needs an HTTP status, not `{text}`"))?;
            }
            "--content-type" => {
                content_type = HeaderValue::try_from(value()?)
                    .map_err(|_| "--content-type is not a valid header value".to_string())?;
            }
            "--body" => body = Bytes::from(value()?),
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    Ok(Args {
        listen,
        reply: Reply {
            status,
            content_type,
            body,
        },
    })
}

async fn answer(
    reply: Reply,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    // Read the whole body first, as the webhook ingress does (a broken body still gets
    // the answer: the floor measures serving, not error paths).
    let _ = request.into_body().collect().await;
    let mut response = Response::new(Full::new(reply.body));
    *response.status_mut() = reply.status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, reply.content_type);
    Ok(response)
}

async fn serve(args: Args) -> Result<(), String> {
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|err| format!("cannot listen on {}: {err}", args.listen))?;
    let addr = listener
        .local_addr()
        .map_err(|err| format!("no local address: {err}"))?;
    println!(
        "{}",
        serde_json::json!({"listening": format!("http://{addr}")})
    );
    let reply = args.reply;
    let accept = async move {
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                // Out of file descriptors and the like: try again, as servers do.
                Err(_) => continue,
            };
            let reply = reply.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| answer(reply.clone(), request));
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    };
    // Exit when the parent closes (or loses) our standard input.
    let parent_gone = async {
        let mut stdin = tokio::io::stdin();
        let mut buffer = [0u8; 64];
        while matches!(stdin.read(&mut buffer).await, Ok(n) if n > 0) {}
    };
    tokio::select! {
        () = accept => {}
        () = parent_gone => {}
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("sluice-hyper-floor: {message}");
            return ExitCode::from(64);
        }
    };
    let executor = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(executor) => executor,
        Err(err) => {
            eprintln!("sluice-hyper-floor: cannot start tokio: {err}");
            return ExitCode::FAILURE;
        }
    };
    match executor.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("sluice-hyper-floor: {message}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(list: &[&str]) -> impl Iterator<Item = String> {
        list.iter()
            .map(|arg| arg.to_string())
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn arguments_set_the_reply() {
        let args = parse(strings(&[
            "--listen",
            "127.0.0.1:9",
            "--status",
            "201",
            "--content-type",
            "text/plain",
            "--body",
            "hi",
        ]))
        .unwrap();
        assert_eq!(args.listen.port(), 9);
        assert_eq!(args.reply.status, StatusCode::CREATED);
        assert_eq!(args.reply.content_type, "text/plain");
        assert_eq!(args.reply.body, "hi");
        let defaults = parse(strings(&[])).unwrap();
        assert_eq!(defaults.reply.status, StatusCode::OK);
        assert!(parse(strings(&["--status", "99"])).is_err());
        assert!(parse(strings(&["--listen"])).is_err());
        assert!(parse(strings(&["--nope"])).is_err());
    }
}

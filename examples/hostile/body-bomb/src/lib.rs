//! `body-bomb`: a hostile guest that makes the host buffer outgoing request bodies it
//! never sends. In a loop it creates an outgoing request, writes up to 2 MiB into its
//! body (as much as the host accepts without sending), and leaks both. Input
//! `{"mib": N}` (default 2048; 4096 MiB would wrap the guest's 32-bit `usize` to 0)
//! stops it once N MiB are buffered, so that on a host
//! that does not charge these bytes the test ends instead of exhausting the machine.
//! It tests that host memory held for a guest counts against its memory budget.
//!
//! `{"leakFrom": "HOST:PORT", "responses": N}` leaks the other way: N plain-HTTP GETs,
//! each response kept and never read, so the host holds what it reads ahead of each.
//!
//! Its control, `{"sendTo": URL, "requests": N}`, behaves as a legitimate connector
//! does: N sequential POSTs through the SDK's client, each with a 100 KiB body and a
//! 4 KiB header, every response read and dropped. It must fit any budget that fits
//! one request, since the host releases what a request held once it is dropped.

use hostile_support::{Data, Error, Output};
use sluice_sdk::component::wasi::http::outgoing_handler;
use sluice_sdk::component::wasi::http::types as http;
use sluice_sdk::component::wasi::io::streams::OutputStream;

hostile_support::hostile_connector!(
    key: "body-bomb",
    description: "Leaks outgoing requests with buffered bodies.",
    run: run,
);

const PER_REQUEST: usize = 2 << 20;

fn run(input: String) -> Result<Output, Error> {
    if let Some(url) = text_field(&input, "sendTo") {
        return send_sequentially(&url, hostile_support::requested(&input, "requests", 300)?);
    }
    if let Some(authority) = text_field(&input, "leakFrom") {
        return leak_responses(
            &authority,
            hostile_support::requested(&input, "responses", 16)?,
        );
    }
    let limit = hostile_support::requested(&input, "mib", 2048)?.saturating_mul(1 << 20);
    let chunk = vec![b'a'; 64 << 10];
    let mut held = 0usize;
    let mut requests = 0u64;
    while held < limit {
        let request = http::OutgoingRequest::new(http::Fields::new());
        let body = request
            .body()
            .map_err(|()| Error::Fatal("no body".to_string()))?;
        let stream = body
            .write()
            .map_err(|()| Error::Fatal("no body stream".to_string()))?;
        held += fill(&stream, &chunk);
        // The stream is a child of the body and must go first; the body and the
        // request (which holds the buffered chunks) are leaked on purpose.
        drop(stream);
        std::mem::forget(body);
        std::mem::forget(request);
        requests += 1;
    }
    Ok(Output {
        data: Data::Json(format!(r#"{{"requests":{requests},"bytes":{held}}}"#)),
        content_type: None,
        status: None,
        headers: Vec::new(),
        branch: None,
    })
}

fn text_field(input: &str, field: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(input).ok()?;
    Some(value.get(field)?.as_str()?.to_string())
}

fn leak_responses(authority: &str, count: usize) -> Result<Output, Error> {
    let fatal = |what: &str, e: &dyn std::fmt::Debug| Error::Fatal(format!("{what}: {e:?}"));
    for i in 0..count {
        let request = http::OutgoingRequest::new(http::Fields::new());
        request
            .set_scheme(Some(&http::Scheme::Http))
            .map_err(|e| fatal("scheme", &e))?;
        request
            .set_authority(Some(authority))
            .map_err(|e| fatal("authority", &e))?;
        request
            .set_path_with_query(Some(&format!("/{i}")))
            .map_err(|e| fatal("path", &e))?;
        let body = request.body().map_err(|e| fatal("body", &e))?;
        http::OutgoingBody::finish(body, None).map_err(|e| fatal("finish", &e))?;
        let pending = outgoing_handler::handle(request, None).map_err(|e| fatal("send", &e))?;
        let response = loop {
            match pending.get() {
                Some(response) => break response,
                None => pending.subscribe().block(),
            }
        };
        let response = response
            .map_err(|e| fatal("response taken", &e))?
            .map_err(|e| fatal("response", &e))?;
        // Never read: the host keeps the connection and what it has read ahead.
        std::mem::forget(response);
    }
    Ok(Output {
        data: Data::Json(format!(r#"{{"responses":{count}}}"#)),
        content_type: None,
        status: None,
        headers: Vec::new(),
        branch: None,
    })
}

fn send_sequentially(url: &str, requests: usize) -> Result<Output, Error> {
    let body = vec![b'b'; 100 << 10];
    let header = "h".repeat(4 << 10);
    let mut received = 0usize;
    for i in 0..requests {
        let response = sluice_sdk::http::Http::post(format!("{url}/{i}"))
            .header("x-padding", header.as_str())
            .body(body.clone())
            .send()
            .map_err(|e| Error::Fatal(format!("request {i} failed: {e:?}")))?;
        received += response.body.len();
    }
    Ok(Output {
        data: Data::Json(format!(
            r#"{{"requests":{requests},"received":{received}}}"#
        )),
        content_type: None,
        status: None,
        headers: Vec::new(),
        branch: None,
    })
}

/// Writes into `stream` until the host stops accepting or 2 MiB are written.
fn fill(stream: &OutputStream, chunk: &[u8]) -> usize {
    let mut written = 0;
    while written < PER_REQUEST {
        let budget = match stream.check_write() {
            Ok(0) | Err(_) => break,
            Ok(n) => usize::try_from(n).unwrap_or(usize::MAX),
        };
        let n = budget.min(chunk.len()).min(PER_REQUEST - written);
        if stream.write(&chunk[..n]).is_err() {
            break;
        }
        written += n;
    }
    written
}

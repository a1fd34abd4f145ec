//! `hello`: an example connector that touches every host interface of the
//! `sluice:flow` `component` world, so the host's tests can drive each one through a
//! real guest: logging, the four state scopes, connections, config, the execution
//! context, outbound HTTP through `wasi:http`, every error kind, synchronous response
//! shaping, a webhook trigger, a data source and the instance lifecycle hooks.
//!
//! Every action takes JSON input. Malformed input yields `error::invalid-input`, never
//! a trap: a trap would tell the host the guest is broken, not that the caller is.
//!
//! JSON shapes produced here use camelCase keys (as the manifest does), including the
//! execution context returned by `whoami`:
//! `{"executionId", "tenantId", "customerId", "customerExternalId", "integrationId",
//! "instanceId", "flowName", "step", "attempt", "startedAtMs", "webhookUrls"}`, where
//! absent options are `null` and `webhookUrls` is an object keyed by flow name.

use serde_json::{Map, Value, json};
use sluice_sdk::component::exports::sluice::flow::connector::Guest;
use sluice_sdk::component::sluice::flow::types::{
    ConnectionProblem, Data, Error, ExecutionContext, HttpRequest, HttpResponse, Output,
    TriggerAccept, TriggerOutcome,
};
use sluice_sdk::component::sluice::flow::{config, connections, context, log, state};
use sluice_sdk::component::wasi::http::{outgoing_handler, types as http};
use sluice_sdk::component::wasi::io::streams::StreamError;

struct Hello;

sluice_sdk::component::export_component!(Hello);

const MANIFEST: &str = include_str!("../manifest.json");

impl Guest for Hello {
    fn manifest() -> String {
        MANIFEST.to_string()
    }

    fn run_action(_ctx: ExecutionContext, action: String, input: String) -> Result<Output, Error> {
        match action.as_str() {
            "echo" => echo(input),
            "counter" => counter(),
            "remember" => remember(&parse_object(&input)?),
            "recall" => recall(&parse_object(&input)?),
            "forget" => forget(&parse_object(&input)?),
            "swap" => swap(&parse_object(&input)?),
            "whoami" => whoami(),
            "connection" => connection(&parse_object(&input)?),
            "fail" => fail(&parse_object(&input)?),
            "respond" => respond(&parse_object(&input)?),
            "http-get" => http_get(&parse_object(&input)?),
            "print" => print(&parse_object(&input)?),
            // Claims JSON that is not: the host must report invalid output, not pass it on.
            "malformed" => Ok(json_output("{\"unterminated\": ".to_string())),
            "panic" => {
                // A panic is a trap for the host; its message goes to stderr, which the
                // host captures and reports with the trap.
                let message = optional_str_field(&parse_object(&input)?, "message")?
                    .unwrap_or("requested panic")
                    .to_string();
                panic!("{message}")
            }
            other => Err(Error::InvalidInput(format!("unknown action `{other}`"))),
        }
    }

    fn run_trigger(
        _ctx: ExecutionContext,
        trigger: String,
        request: HttpRequest,
        _inputs: String,
    ) -> Result<TriggerOutcome, Error> {
        if trigger != "webhook" {
            return Err(Error::InvalidInput(format!("unknown trigger `{trigger}`")));
        }
        // The host lower-cases header names; comparing case-insensitively anyway keeps
        // this example correct if it is ever fed a request from elsewhere.
        if request
            .headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("x-reject"))
        {
            return Ok(TriggerOutcome::Respond(HttpResponse {
                status: 401,
                headers: Vec::new(),
                content_type: Some("text/plain".to_string()),
                body: b"rejected".to_vec(),
            }));
        }
        // Later steps can address JSON payloads field by field; anything else (a form,
        // a binary upload) is passed through untouched as bytes.
        let payload = match String::from_utf8(request.body) {
            Ok(text) if serde_json::from_str::<Value>(&text).is_ok() => Data::Json(text),
            Ok(text) => Data::Bytes(text.into_bytes()),
            Err(not_utf8) => Data::Bytes(not_utf8.into_bytes()),
        };
        Ok(TriggerOutcome::Accept(TriggerAccept {
            payload,
            branch: None,
            response: None,
        }))
    }

    fn run_data_source(
        _ctx: ExecutionContext,
        name: String,
        _input: String,
    ) -> Result<String, Error> {
        match name.as_str() {
            "colors" => Ok(json!([
                {"key": "red", "label": "Red"},
                {"key": "green", "label": "Green"},
            ])
            .to_string()),
            other => Err(Error::InvalidInput(format!(
                "unknown data source `{other}`"
            ))),
        }
    }

    fn on_instance_deploy(
        _ctx: ExecutionContext,
        trigger: String,
        _inputs: String,
    ) -> Result<(), Error> {
        // `set` overwrites, so deploying twice leaves the same state: the hook must be
        // idempotent because the host may run it again after a partial deploy.
        state::set(state::Scope::Instance, &deployed_key(&trigger), "true").map_err(state_error)
    }

    fn on_instance_remove(
        _ctx: ExecutionContext,
        trigger: String,
        _inputs: String,
    ) -> Result<(), Error> {
        state::delete(state::Scope::Instance, &deployed_key(&trigger))
            .map(|_existed| ())
            .map_err(state_error)
    }
}

fn deployed_key(trigger: &str) -> String {
    format!("deployed:{trigger}")
}

fn echo(input: String) -> Result<Output, Error> {
    log::write(
        log::Level::Info,
        "echo",
        Some(&json!({"bytes": input.len()}).to_string()),
    );
    Ok(json_output(input))
}

fn counter() -> Result<Output, Error> {
    // A plain read-modify-write: two concurrent executions of the same flow may both
    // read the same count. The `swap` action shows the atomic alternative.
    let current = match state::get(state::Scope::Flow, "count").map_err(state_error)? {
        None => 0,
        Some(text) => serde_json::from_str::<u64>(&text).map_err(|e| {
            Error::Fatal(format!("stored count is not a non-negative integer: {e}"))
        })?,
    };
    let next = current
        .checked_add(1)
        .ok_or_else(|| Error::Fatal("count overflowed".to_string()))?;
    state::set(state::Scope::Flow, "count", &next.to_string()).map_err(state_error)?;
    Ok(json_value_output(&json!({"count": next})))
}

fn remember(input: &Map<String, Value>) -> Result<Output, Error> {
    let scope = scope_field(input)?;
    let key = str_field(input, "key")?;
    let value = input
        .get("value")
        .ok_or_else(|| Error::InvalidInput("missing field `value`".to_string()))?;
    state::set(scope, key, &value.to_string()).map_err(state_error)?;
    Ok(json_value_output(&json!({"ok": true})))
}

fn recall(input: &Map<String, Value>) -> Result<Output, Error> {
    let scope = scope_field(input)?;
    let key = str_field(input, "key")?;
    let value = match state::get(scope, key).map_err(state_error)? {
        Some(text) => parse_host_json(&text, "state value")?,
        None => Value::Null,
    };
    Ok(json_value_output(&json!({"value": value})))
}

fn forget(input: &Map<String, Value>) -> Result<Output, Error> {
    let scope = scope_field(input)?;
    let key = str_field(input, "key")?;
    let existed = state::delete(scope, key).map_err(state_error)?;
    Ok(json_value_output(&json!({"existed": existed})))
}

fn swap(input: &Map<String, Value>) -> Result<Output, Error> {
    let scope = scope_field(input)?;
    let key = str_field(input, "key")?;
    // JSON null stands for "absent" on both sides, so a caller can express every case
    // of the WIT signature (create-if-absent, delete-if-equal) in plain JSON.
    let as_option = |name: &str| match input.get(name) {
        None | Some(Value::Null) => None,
        Some(value) => Some(value.to_string()),
    };
    let expected = as_option("expected");
    let new = as_option("new");
    let swapped = state::compare_and_swap(scope, key, expected.as_deref(), new.as_deref())
        .map_err(state_error)?;
    Ok(json_value_output(&json!({"swapped": swapped})))
}

fn whoami() -> Result<Output, Error> {
    let ctx = context::current();
    let webhook_urls: Map<String, Value> = ctx
        .webhook_urls
        .into_iter()
        .map(|(flow, url)| (flow, Value::String(url)))
        .collect();
    let context = json!({
        "executionId": ctx.execution_id,
        "tenantId": ctx.tenant_id,
        "customerId": ctx.customer_id,
        "customerExternalId": ctx.customer_external_id,
        "integrationId": ctx.integration_id,
        "instanceId": ctx.instance_id,
        "flowName": ctx.flow_name,
        "step": ctx.step,
        "attempt": ctx.attempt,
        "startedAtMs": ctx.started_at_ms,
        "webhookUrls": webhook_urls,
    });
    let mut config = Map::new();
    for (key, text) in config::all() {
        let value = parse_host_json(&text, "config value")?;
        config.insert(key, value);
    }
    Ok(json_value_output(
        &json!({"context": context, "config": config}),
    ))
}

fn connection(input: &Map<String, Value>) -> Result<Output, Error> {
    let key = str_field(input, "key")?;
    let conn = connections::get(key).map_err(|e| match e {
        connections::ConnectionError::NotFound(message)
        | connections::ConnectionError::Expired(message) => Error::Connection(ConnectionProblem {
            key: key.to_string(),
            message,
        }),
        connections::ConnectionError::Unavailable(message) => Error::Retryable(message),
    })?;
    let fields = parse_host_json(&conn.fields, "connection fields")?;
    let token = conn.token.map(|t| t.access_token);
    Ok(json_value_output(&json!({
        "key": conn.key,
        "kind": conn.kind,
        "fields": fields,
        "token": token,
    })))
}

/// Writes `text` to stdout: guests that print instead of logging still reach the log.
fn print(input: &Map<String, Value>) -> Result<Output, Error> {
    println!("{}", str_field(input, "text")?);
    Ok(json_value_output(&json!({"printed": true})))
}

fn fail(input: &Map<String, Value>) -> Result<Output, Error> {
    let kind = str_field(input, "kind")?;
    let message = optional_str_field(input, "message")?
        .unwrap_or("requested failure")
        .to_string();
    Err(match kind {
        "invalid-input" => Error::InvalidInput(message),
        "connection" => Error::Connection(ConnectionProblem {
            key: optional_str_field(input, "key")?
                .unwrap_or_default()
                .to_string(),
            message,
        }),
        "retryable" => Error::Retryable(message),
        "fatal" => Error::Fatal(message),
        other => Error::InvalidInput(format!("unknown error kind `{other}`")),
    })
}

fn respond(input: &Map<String, Value>) -> Result<Output, Error> {
    let status = input
        .get("status")
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok())
        .ok_or_else(|| {
            Error::InvalidInput("`status` must be an integer from 0 to 65535".to_string())
        })?;
    let body = optional_str_field(input, "body")?.unwrap_or_default();
    let headers = match input.get("headers") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(pairs)) => pairs
            .iter()
            .map(|pair| match pair.as_array().map(Vec::as_slice) {
                Some([Value::String(name), Value::String(value)]) => {
                    Ok((name.clone(), value.clone()))
                }
                _ => Err(Error::InvalidInput(
                    "each header must be a [name, value] pair of strings".to_string(),
                )),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => {
            return Err(Error::InvalidInput(
                "`headers` must be an array of [name, value] pairs".to_string(),
            ));
        }
    };
    Ok(Output {
        data: Data::Bytes(body.as_bytes().to_vec()),
        content_type: Some("text/plain".to_string()),
        status: Some(status),
        headers,
        branch: None,
    })
}

/// Uses the raw `wasi:http` bindings rather than a client crate so the example shows
/// exactly which host calls an outbound request makes, and stays dependency-free.
fn http_get(input: &Map<String, Value>) -> Result<Output, Error> {
    let url = str_field(input, "url")?;
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("http://") {
        (http::Scheme::Http, rest)
    } else if let Some(rest) = url.strip_prefix("https://") {
        (http::Scheme::Https, rest)
    } else {
        return Err(Error::InvalidInput(
            "`url` must start with http:// or https://".to_string(),
        ));
    };
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    if authority.is_empty() {
        return Err(Error::InvalidInput("`url` has no host".to_string()));
    }
    let path_with_query = match path {
        "" => "/".to_string(),
        p if p.starts_with('?') => format!("/{p}"),
        p => p.to_string(),
    };

    let request = http::OutgoingRequest::new(http::Fields::new());
    // The setters only fail on syntactically invalid values, which are the caller's.
    let invalid = |what: &str| Error::InvalidInput(format!("invalid {what} in `url`"));
    request
        .set_method(&http::Method::Get)
        .map_err(|()| invalid("method"))?;
    request
        .set_scheme(Some(&scheme))
        .map_err(|()| invalid("scheme"))?;
    request
        .set_authority(Some(authority))
        .map_err(|()| invalid("authority"))?;
    request
        .set_path_with_query(Some(&path_with_query))
        .map_err(|()| invalid("path"))?;

    // Debug text of the error code is kept verbatim: it names the cause precisely
    // (e.g. `HttpRequestDenied` for a host outside the allow-list).
    let http_error =
        |code: http::ErrorCode| Error::Fatal(format!("outgoing request failed: {code:?}"));
    let pending = outgoing_handler::handle(request, None).map_err(http_error)?;
    // The pollable is a child of `pending` and must be dropped first; the temporary
    // dies at the end of this statement.
    pending.subscribe().block();
    let response = match pending.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return Err(http_error(code)),
        Some(Err(())) => return Err(Error::Fatal("response already taken".to_string())),
        None => {
            return Err(Error::Fatal(
                "response not ready after its pollable fired".to_string(),
            ));
        }
    };
    drop(pending);

    let status = response.status();
    let body = response
        .consume()
        .map_err(|()| Error::Fatal("response body already consumed".to_string()))?;
    let stream = body
        .stream()
        .map_err(|()| Error::Fatal("response body stream already taken".to_string()))?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => {
                return Err(Error::Fatal(format!(
                    "reading response body failed: {}",
                    e.to_debug_string()
                )));
            }
        }
    }
    // Child resources go before their parents, or the host traps the guest.
    drop(stream);
    drop(body);
    drop(response);

    let text = String::from_utf8(bytes)
        .map_err(|e| Error::Fatal(format!("response body is not UTF-8: {e}")))?;
    Ok(json_value_output(&json!({"status": status, "body": text})))
}

fn parse_object(input: &str) -> Result<Map<String, Value>, Error> {
    match serde_json::from_str(input) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Error::InvalidInput(
            "input must be a JSON object".to_string(),
        )),
        Err(e) => Err(Error::InvalidInput(format!("input is not JSON: {e}"))),
    }
}

fn str_field<'a>(input: &'a Map<String, Value>, name: &str) -> Result<&'a str, Error> {
    optional_str_field(input, name)?
        .ok_or_else(|| Error::InvalidInput(format!("missing field `{name}`")))
}

fn optional_str_field<'a>(
    input: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, Error> {
    match input.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Error::InvalidInput(format!(
            "field `{name}` must be a string"
        ))),
    }
}

fn scope_field(input: &Map<String, Value>) -> Result<state::Scope, Error> {
    match str_field(input, "scope")? {
        "execution" => Ok(state::Scope::Execution),
        "flow" => Ok(state::Scope::Flow),
        "instance" => Ok(state::Scope::Instance),
        "integration" => Ok(state::Scope::Integration),
        other => Err(Error::InvalidInput(format!(
            "unknown scope `{other}` (expected execution, flow, instance or integration)"
        ))),
    }
}

/// The host promises valid JSON; if it ever breaks that promise the fault is not the
/// caller's, hence `fatal` rather than `invalid-input`.
fn parse_host_json(text: &str, what: &str) -> Result<Value, Error> {
    serde_json::from_str(text)
        .map_err(|e| Error::Fatal(format!("{what} from the host is not JSON: {e}")))
}

fn state_error(e: state::StateError) -> Error {
    match e {
        state::StateError::TooLarge(m)
        | state::StateError::InvalidJson(m)
        | state::StateError::QuotaExceeded(m) => Error::InvalidInput(m),
        state::StateError::Unavailable(m) => Error::Retryable(m),
    }
}

fn json_output(json: String) -> Output {
    Output {
        data: Data::Json(json),
        content_type: None,
        status: None,
        headers: Vec::new(),
        branch: None,
    }
}

fn json_value_output(value: &Value) -> Output {
    json_output(value.to_string())
}

//! `http`: an example connector for generic REST calls. One action, `request`, sends
//! any method to any URL on the instance's allow-list (headers, query, a JSON or raw
//! body, optionally a connection's bearer token) and returns status, headers and body.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use sluice_sdk::prelude::*;
use sluice_sdk::{RequestBuilder, Response};

/// A request to send.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestInput {
    /// HTTP method: GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS or an extension method
    pub method: String,
    /// Absolute http:// or https:// URL; its host must be on the instance's allow-list
    pub url: String,
    /// Request headers, by name
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Query parameters appended to the URL (percent-encoded): strings, numbers,
    /// booleans, or arrays of those for a repeated parameter
    #[serde(default)]
    pub query: BTreeMap<String, Value>,
    /// A JSON body (sent with `content-type: application/json` unless a header says otherwise)
    #[serde(default, deserialize_with = "present")]
    pub json: Option<Value>,
    /// A raw text body (set a `content-type` header to say what it is)
    #[serde(default)]
    pub body: Option<String>,
    /// Config-variable key of a connection whose bearer token is sent (its OAuth
    /// token, else its `token` or `apiKey` field); a 401/403 is then attributed to it
    #[serde(default)]
    pub connection: Option<String>,
    /// Bounds the connect time, the wait for the first response byte and each wait
    /// between bytes, in milliseconds
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Turn a 4xx/5xx response into an error (401/403: connection, 408/429/5xx:
    /// retryable, other 4xx: fatal) instead of returning it
    #[serde(default)]
    pub fail_on_error: bool,
}

/// Reads a present field as `Some`, even when it is `null`: `"json": null` sends the
/// JSON document `null`, while leaving `json` out sends no JSON body.
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// What `request` returns.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RequestOutput {
    pub status: u16,
    /// Response headers by lower-case name; a repeated header's values are joined
    /// with `, `.
    pub headers: BTreeMap<String, String>,
    /// Parsed JSON when the response says it is JSON (and parses), else the text, or
    /// base64 when the body is not UTF-8 (then `bodyEncoding` is `base64`).
    pub body: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_encoding: Option<&'static str>,
}

/// Checks the method: an HTTP token, sent upper-cased.
pub fn method(method: &str) -> Result<String, Error> {
    let valid = !method.is_empty()
        && method
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if valid {
        Ok(method.to_ascii_uppercase())
    } else {
        Err(Error::invalid_input(format!(
            "`method` must be an HTTP method such as GET or POST, not `{method}`"
        )))
    }
}

/// The `(name, value)` pairs of the query, in key order, arrays becoming repeated
/// parameters.
pub fn query_pairs(query: &BTreeMap<String, Value>) -> Result<Vec<(String, String)>, Error> {
    fn scalar(name: &str, value: &Value) -> Result<String, Error> {
        match value {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            other => Err(Error::invalid_input(format!(
                "query parameter `{name}` must be a string, number, boolean or an array of those, not {other}"
            ))),
        }
    }
    let mut pairs = Vec::new();
    for (name, value) in query {
        match value {
            Value::Array(items) => {
                for item in items {
                    pairs.push((name.clone(), scalar(name, item)?));
                }
            }
            value => pairs.push((name.clone(), scalar(name, value)?)),
        }
    }
    Ok(pairs)
}

/// The token a connection authenticates with: its OAuth token, else a `token` or
/// `apiKey` field (API-key connections declared by other components).
pub fn connection_token(connection: &Connection) -> Result<String, Error> {
    if let Some(token) = connection.token() {
        return Ok(token.access_token.clone());
    }
    ["token", "apiKey"]
        .iter()
        .find_map(|field| connection.fields().get(*field).and_then(Value::as_str))
        .map(str::to_string)
        .ok_or_else(|| {
            Error::connection(
                connection.key(),
                "connection has no OAuth token and no `token` or `apiKey` field to send as a bearer token",
            )
        })
}

/// The response as `request` returns it.
pub fn output(response: &Response) -> RequestOutput {
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in &response.headers {
        headers
            .entry(name.to_ascii_lowercase())
            .and_modify(|joined| {
                joined.push_str(", ");
                joined.push_str(value);
            })
            .or_insert_with(|| value.clone());
    }
    let is_json = response
        .header("content-type")
        .and_then(|value| value.split(';').next())
        .map(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json" || mime.ends_with("+json")
        })
        .unwrap_or(false);
    // A body that claims to be JSON but does not parse is still returned, as text:
    // the caller asked for the response, not for a JSON guarantee.
    let parsed = is_json
        .then(|| serde_json::from_slice::<Value>(&response.body).ok())
        .flatten();
    let (body, body_encoding) = match (parsed, std::str::from_utf8(&response.body)) {
        (Some(json), _) => (json, None),
        (None, Ok(text)) => (Value::String(text.to_string()), None),
        (None, Err(_)) => (
            Value::String(base64::engine::general_purpose::STANDARD.encode(&response.body)),
            Some("base64"),
        ),
    };
    RequestOutput {
        status: response.status,
        headers,
        body,
        body_encoding,
    }
}

/// The URL without its query string or fragment, for logs (queries often carry keys).
fn redacted(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

fn request(ctx: &mut Context, input: RequestInput) -> Result<RequestOutput, Error> {
    let method = method(&input.method)?;
    if input.json.is_some() && input.body.is_some() {
        return Err(Error::invalid_input(
            "give either `json` or `body`, not both",
        ));
    }
    let has_authorization = input
        .headers
        .keys()
        .any(|name| name.eq_ignore_ascii_case("authorization"));
    if input.connection.is_some() && has_authorization {
        // Two authorization headers would leave the server to pick one.
        return Err(Error::invalid_input(
            "give either `connection` or an `authorization` header, not both",
        ));
    }
    let mut builder: RequestBuilder = Http::request(method.as_str(), input.url.as_str());
    for (name, value) in &input.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    for (name, value) in query_pairs(&input.query)? {
        builder = builder.query(name, value);
    }
    if let Some(key) = &input.connection {
        let connection = ctx.connection(key)?;
        builder = builder
            .bearer(&connection_token(&connection)?)
            .connection_key(key.as_str());
    }
    if let Some(json) = &input.json {
        builder = builder.json(json);
    } else if let Some(body) = input.body {
        builder = builder.body(body.into_bytes());
    }
    if let Some(ms) = input.timeout_ms {
        if ms == 0 {
            return Err(Error::invalid_input("`timeoutMs` must be at least 1"));
        }
        builder = builder.timeout(Duration::from_millis(ms));
    }
    let response = builder.send()?;
    debug!(
        fields = json!({"status": response.status}),
        "{method} {} returned {}",
        redacted(&input.url),
        response.status
    );
    let response = if input.fail_on_error {
        response.error_for_status()?
    } else {
        response
    };
    Ok(output(&response))
}

/// The declaration: the component's one registration point.
pub fn component() -> Component {
    Component::new("http", "0.1.0")
        .label("HTTP")
        .description("Generic REST requests to any allowed host.")
        .action(
            Action::new("request", request)
                .label("Request")
                .description("Sends an HTTP request and returns its status, headers and body (parsed when JSON)."),
        )
}

sluice_sdk::export_component!(component);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declaration_is_valid() {
        assert_eq!(component().validate(), Ok(()));
        let inputs = &component().manifest()["actions"]["request"]["inputs"];
        assert_eq!(inputs["required"], json!(["method", "url"]));
        assert_eq!(inputs["additionalProperties"], json!(false));
        assert_eq!(inputs["properties"]["failOnError"]["default"], json!(false));
        assert!(inputs["properties"]["timeoutMs"].is_object(), "{inputs}");
    }

    #[test]
    fn json_null_is_a_body_and_absence_is_none() {
        let parse = |v: Value| serde_json::from_value::<RequestInput>(v).unwrap();
        let base = json!({"method": "POST", "url": "https://h/"});
        assert_eq!(parse(base.clone()).json, None);
        let mut with_null = base;
        with_null["json"] = Value::Null;
        assert_eq!(parse(with_null).json, Some(Value::Null));
    }

    #[test]
    fn methods_and_query_parameters() {
        assert_eq!(method("patch").unwrap(), "PATCH");
        assert_eq!(method("PURGE").unwrap(), "PURGE");
        for bad in ["", "GET /x", "G\nET"] {
            assert_eq!(method(bad).unwrap_err().kind(), "invalid-input", "{bad:?}");
        }
        let query: BTreeMap<String, Value> =
            serde_json::from_value(json!({"q": "a b", "page": 2, "draft": false, "tag": ["x", 3]}))
                .unwrap();
        assert_eq!(
            query_pairs(&query).unwrap(),
            [
                ("draft", "false"),
                ("page", "2"),
                ("q", "a b"),
                ("tag", "x"),
                ("tag", "3")
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
        let nested: BTreeMap<String, Value> =
            serde_json::from_value(json!({"filter": {"a": 1}})).unwrap();
        assert_eq!(query_pairs(&nested).unwrap_err().kind(), "invalid-input");
    }

    #[test]
    fn bodies_by_content_type() {
        let response = |content_type: &str, body: &[u8]| {
            Response::new(
                200,
                vec![
                    ("content-type".into(), content_type.into()),
                    ("x-a".into(), "1".into()),
                    ("x-a".into(), "2".into()),
                ],
                body.to_vec(),
            )
        };
        let json_out = output(&response("application/json; charset=utf-8", br#"{"id":1}"#));
        assert_eq!(json_out.body, json!({"id": 1}));
        assert_eq!(json_out.headers["x-a"], "1, 2");
        let problem = output(&response("application/problem+json", br#"{"title":"x"}"#));
        assert_eq!(problem.body["title"], "x");
        let text = output(&response("text/plain", b"{\"id\":1}"));
        assert_eq!(text.body, json!("{\"id\":1}"));
        let broken = output(&response("application/json", b"not json"));
        assert_eq!(broken.body, json!("not json"));
        let bytes = output(&response("application/octet-stream", &[0xff, 0, 1]));
        assert_eq!(bytes.body, json!("/wAB"));
        assert_eq!(bytes.body_encoding, Some("base64"));
    }

    #[test]
    fn connection_tokens() {
        let connection = |fields: Value| {
            let Value::Object(map) = fields else {
                panic!("fields are an object")
            };
            Connection::new("api", "api-key", map, None)
        };
        assert_eq!(
            connection_token(&connection(json!({"apiKey": "k"}))).unwrap(),
            "k"
        );
        assert_eq!(
            connection_token(&connection(json!({"token": "t", "apiKey": "k"}))).unwrap(),
            "t"
        );
        let err = connection_token(&connection(json!({}))).unwrap_err();
        assert_eq!(err, Error::connection("api", err.message()));
    }

    #[test]
    fn log_urls_drop_the_query() {
        assert_eq!(redacted("https://h/a?key=secret#f"), "https://h/a");
        assert_eq!(redacted("https://h/a"), "https://h/a");
    }
}

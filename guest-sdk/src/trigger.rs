//! Webhook triggers: the [`Request`] a trigger receives (method, path, query, headers,
//! raw body, parsed as JSON on demand) and the [`TriggerResponse`] it decides on (run
//! the flow with a payload, maybe answering the caller, or reject with an [`HttpResponse`]).

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::flow::sluice::flow::types as wit;
use crate::error::Error;
use crate::output::{Data, to_json_text};

/// An HTTP request received on a flow's webhook URL.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    /// The HTTP method, upper-case.
    pub method: String,
    /// Path after the webhook URL (`""` when the URL was called as is).
    pub path: String,
    /// Query parameters in order, repeats kept.
    pub query: Vec<(String, String)>,
    /// Header names are lower-case; a name may repeat.
    pub headers: Vec<(String, String)>,
    /// The raw body, byte for byte (what signatures are computed over).
    pub body: Vec<u8>,
}

impl Request {
    /// A request with `method` and `body` (for native unit tests of trigger logic).
    pub fn new(method: impl Into<String>, body: impl Into<Vec<u8>>) -> Self {
        Self {
            method: method.into(),
            body: body.into(),
            ..Self::default()
        }
    }

    /// Adds a header (the name is lower-cased, as the host does).
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    /// Adds a query parameter.
    pub fn with_query(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.query.push((name.into(), value.into()));
        self
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name` (case-insensitive), in order.
    pub fn header_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first value of query parameter `name` (case-sensitive).
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `content-type` header.
    pub fn content_type(&self) -> Option<&str> {
        self.header("content-type")
    }

    /// The body as UTF-8 text; anything else is [`Error::InvalidInput`].
    pub fn text(&self) -> Result<&str, Error> {
        std::str::from_utf8(&self.body)
            .map_err(|e| Error::invalid_input(format!("request body is not UTF-8: {e}")))
    }

    /// The body parsed as JSON into `T`; a body of another shape is
    /// [`Error::InvalidInput`] naming the failing field's path.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        let mut de = serde_json::Deserializer::from_slice(&self.body);
        serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            if path == "." {
                Error::invalid_input(format!(
                    "request body is not the expected JSON: {}",
                    e.inner()
                ))
            } else {
                Error::invalid_input(format!(
                    "request body is not the expected JSON at `{path}`: {}",
                    e.inner()
                ))
            }
        })
    }
}

impl From<wit::HttpRequest> for Request {
    fn from(r: wit::HttpRequest) -> Self {
        Self {
            method: r.method,
            path: r.path,
            query: r.query,
            headers: r.headers,
            body: r.body,
        }
    }
}

/// An HTTP response a trigger sends back to the webhook caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    status: u16,
    headers: Vec<(String, String)>,
    content_type: Option<String>,
    body: Result<Vec<u8>, Error>,
}

impl HttpResponse {
    /// An empty response with `status`.
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            content_type: None,
            body: Ok(Vec::new()),
        }
    }

    /// Sets a `text/plain` body.
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.body = Ok(text.into().into_bytes());
        self.content_type = Some("text/plain; charset=utf-8".to_string());
        self
    }

    /// Sets a JSON body (a value that cannot be serialized fails the trigger with
    /// [`Error::Fatal`]).
    pub fn json<T: Serialize + ?Sized>(mut self, value: &T) -> Self {
        self.body = to_json_text(value).map(String::into_bytes);
        self.content_type = Some("application/json".to_string());
        self
    }

    /// Sets a body of bytes with its content type.
    pub fn body(mut self, bytes: impl Into<Vec<u8>>, content_type: impl Into<String>) -> Self {
        self.body = Ok(bytes.into());
        self.content_type = Some(content_type.into());
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The status.
    pub fn status(&self) -> u16 {
        self.status
    }

    fn into_wit(self) -> Result<wit::HttpResponse, Error> {
        Ok(wit::HttpResponse {
            status: self.status,
            headers: self.headers,
            content_type: self.content_type,
            body: self.body?,
        })
    }
}

/// What a trigger decided about a request: run the flow with a payload (optionally
/// following a branch and answering the caller), or answer without running it.
///
/// ```
/// # use sluice_sdk::{TriggerResponse, HttpResponse, Request};
/// # let request = Request::new("POST", "{}");
/// let run = TriggerResponse::accept_json(&serde_json::json!({"issue": 7})).branch("opened");
/// let pass_through = TriggerResponse::accept_request(&request);
/// let challenge = TriggerResponse::respond(HttpResponse::new(200).text("challenge-code"));
/// let refuse = TriggerResponse::reject(401, "bad signature");
/// # let _ = (run, pass_through, challenge, refuse);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggerResponse {
    decision: Decision,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Decision {
    Accept {
        payload: Result<Data, Error>,
        branch: Option<String>,
        response: Option<HttpResponse>,
    },
    Respond(HttpResponse),
}

impl TriggerResponse {
    fn accept(payload: Result<Data, Error>) -> Self {
        Self {
            decision: Decision::Accept {
                payload,
                branch: None,
                response: None,
            },
        }
    }

    /// Run the flow; later steps see `payload` (serialized to JSON) as the trigger's
    /// result.
    pub fn accept_json<T: Serialize + ?Sized>(payload: &T) -> Self {
        Self::accept(Data::json(payload))
    }

    /// Run the flow with a payload of raw bytes (a CSV upload, a form).
    pub fn accept_bytes(bytes: impl Into<Vec<u8>>) -> Self {
        Self::accept(Ok(Data::Bytes(bytes.into())))
    }

    /// Run the flow with the request body as is: JSON when it parses as JSON, bytes
    /// otherwise (the default webhook behaviour).
    pub fn accept_request(request: &Request) -> Self {
        let is_json = serde_json::from_slice::<serde::de::IgnoredAny>(&request.body).is_ok();
        match std::str::from_utf8(&request.body) {
            Ok(text) if is_json => Self::accept(Ok(Data::Json(text.to_string()))),
            _ => Self::accept_bytes(request.body.clone()),
        }
    }

    /// Do not run the flow; answer the caller with `status` and a plain-text `message`
    /// (a bad signature, an unknown event).
    pub fn reject(status: u16, message: impl Into<String>) -> Self {
        Self::respond(HttpResponse::new(status).text(message))
    }

    /// Do not run the flow; answer the caller with `response` (a verification
    /// challenge, for example).
    pub fn respond(response: HttpResponse) -> Self {
        Self {
            decision: Decision::Respond(response),
        }
    }

    /// The branch to follow (the trigger must declare it); ignored when the flow
    /// does not run.
    pub fn branch(mut self, name: impl Into<String>) -> Self {
        if let Decision::Accept { branch, .. } = &mut self.decision {
            *branch = Some(name.into());
        }
        self
    }

    /// Answer the caller with `response` while the flow runs (instead of the default
    /// answer, the execution id); replaces the response of [`reject`](Self::reject)
    /// and [`respond`](Self::respond).
    pub fn respond_with(mut self, response: HttpResponse) -> Self {
        match &mut self.decision {
            Decision::Accept { response: r, .. } => *r = Some(response),
            Decision::Respond(r) => *r = response,
        }
        self
    }

    /// Whether the flow runs.
    pub fn is_accepted(&self) -> bool {
        matches!(self.decision, Decision::Accept { .. })
    }

    #[doc(hidden)]
    pub fn into_wit(self) -> Result<wit::TriggerOutcome, Error> {
        Ok(match self.decision {
            Decision::Accept {
                payload,
                branch,
                response,
            } => wit::TriggerOutcome::Accept(wit::TriggerAccept {
                payload: payload?.into(),
                branch,
                response: response.map(HttpResponse::into_wit).transpose()?,
            }),
            Decision::Respond(response) => wit::TriggerOutcome::Respond(response.into_wit()?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_accessors() {
        let r = Request::new("POST", r#"{"action":"opened","issue":{"number":7}}"#)
            .with_header("X-GitHub-Event", "issues")
            .with_header("x-multi", "a")
            .with_header("x-multi", "b")
            .with_query("debug", "1");
        assert_eq!(r.header("x-github-event"), Some("issues"));
        assert_eq!(r.header("X-GITHUB-EVENT"), Some("issues"));
        assert_eq!(r.header_all("x-multi").collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(r.query_param("debug"), Some("1"));
        assert_eq!(r.query_param("nope"), None);
        #[derive(serde::Deserialize)]
        struct Event {
            issue: Issue,
        }
        #[derive(serde::Deserialize)]
        struct Issue {
            number: u64,
        }
        assert_eq!(r.json::<Event>().unwrap().issue.number, 7);
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Wrong {
            issue: String,
        }
        let err = r.json::<Wrong>().unwrap_err();
        assert_eq!(err.kind(), "invalid-input");
        assert!(err.message().contains("`issue`"), "{err}");
        assert_eq!(
            Request::new("POST", vec![0xff]).text().unwrap_err().kind(),
            "invalid-input"
        );
    }

    #[test]
    fn accept_outcomes() {
        let out = TriggerResponse::accept_json(&json!({"a": 1}))
            .branch("opened")
            .respond_with(HttpResponse::new(202).json(&json!({"ok": true})))
            .into_wit()
            .unwrap();
        let wit::TriggerOutcome::Accept(accept) = out else {
            panic!("not accepted")
        };
        assert!(matches!(accept.payload, wit::Data::Json(ref t) if t == r#"{"a":1}"#));
        assert_eq!(accept.branch.as_deref(), Some("opened"));
        let response = accept.response.unwrap();
        assert_eq!(response.status, 202);
        assert_eq!(response.body, br#"{"ok":true}"#);
        assert_eq!(response.content_type.as_deref(), Some("application/json"));
    }

    #[test]
    fn accept_request_passes_the_body_through() {
        let json_body = TriggerResponse::accept_request(&Request::new("POST", " [1, 2] "));
        let wit::TriggerOutcome::Accept(a) = json_body.into_wit().unwrap() else {
            panic!()
        };
        assert!(matches!(a.payload, wit::Data::Json(ref t) if t == " [1, 2] "));
        let csv = TriggerResponse::accept_request(&Request::new("POST", "a,b\n1,2\n"));
        let wit::TriggerOutcome::Accept(a) = csv.into_wit().unwrap() else {
            panic!()
        };
        assert!(matches!(a.payload, wit::Data::Bytes(ref b) if b == b"a,b\n1,2\n"));
    }

    #[test]
    fn reject_responds_without_running() {
        let r = TriggerResponse::reject(401, "bad signature").branch("ignored");
        assert!(!r.is_accepted());
        let wit::TriggerOutcome::Respond(resp) = r.into_wit().unwrap() else {
            panic!()
        };
        assert_eq!(resp.status, 401);
        assert_eq!(resp.body, b"bad signature");
        assert_eq!(
            resp.content_type.as_deref(),
            Some("text/plain; charset=utf-8")
        );
    }
}

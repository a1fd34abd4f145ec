//! Host-side mirrors of the values that cross the WIT boundary (`wit/types.wit`).
//!
//! They are plain serde types so embedders can store and print them without touching
//! the generated bindings; `sandbox` converts them to and from the bindings.

use serde::{Deserialize, Serialize};

/// The deepest nesting of arrays and objects a JSON document may have, anywhere in
/// Sluice: serde_json's own recursion limit (it refuses the 128th level), which `state.set` (through
/// `canonical_json`) and every host-side parse into a value already apply. A guest
/// output nested deeper is `invalid-output`: it could be stored but never read back.
pub const MAX_JSON_DEPTH: usize = 127;

/// Whether `text` nests arrays and objects more than [`MAX_JSON_DEPTH`] deep. One
/// pass over the bytes without allocating, so a normal output costs next to nothing;
/// it assumes `text` parses (brackets inside strings are skipped, escapes honoured).
pub(crate) fn json_too_deep(text: &str) -> bool {
    json_depth_exceeded(text, MAX_JSON_DEPTH).is_some()
}

/// Where (1-based line and column) `text` first opens an array or object deeper than
/// `limit`, counting brackets outside strings as a JSON parser reads them.
pub(crate) fn json_depth_exceeded(text: &str, limit: usize) -> Option<(u64, u64)> {
    let (mut depth, mut line, mut column) = (0usize, 1u64, 0u64);
    let (mut in_string, mut escaped) = (false, false);
    for &byte in text.as_bytes() {
        if byte == b'\n' {
            line += 1;
            column = 0;
        } else {
            column += 1;
        }
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return Some((line, column));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// Data a step consumes or produces: a JSON document or raw bytes.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "kebab-case")]
pub enum Data {
    /// A JSON document, as text. The sandbox checks that guest-produced JSON parses.
    Json(String),
    /// Raw bytes; serialized as standard base64 text.
    Bytes(#[serde(with = "base64_bytes")] Vec<u8>),
}

impl Data {
    /// Size of the payload in bytes.
    pub fn len(&self) -> usize {
        match self {
            Data::Json(text) => text.len(),
            Data::Bytes(bytes) => bytes.len(),
        }
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Debug for Data {
    // Payloads can be megabytes; a debug print shows a prefix only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const SHOWN: usize = 256;
        match self {
            Data::Json(text) => {
                let mut end = text.len().min(SHOWN);
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                let more = if end < text.len() { "…" } else { "" };
                write!(f, "Json({}{more})", &text[..end])
            }
            Data::Bytes(bytes) => write!(f, "Bytes({} bytes)", bytes.len()),
        }
    }
}

/// What an action or a code-native flow returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Output {
    /// The result.
    pub data: Data,
    /// MIME type of `data`.
    pub content_type: Option<String>,
    /// HTTP status if this output ends a synchronous invocation.
    pub status: Option<u16>,
    /// Response headers if this output ends a synchronous invocation.
    pub headers: Vec<(String, String)>,
    /// The branch to follow, for actions that branch.
    pub branch: Option<String>,
}

impl Output {
    /// A plain JSON output with no HTTP shaping.
    pub fn json(text: impl Into<String>) -> Self {
        Output {
            data: Data::Json(text.into()),
            content_type: None,
            status: None,
            headers: Vec::new(),
            branch: None,
        }
    }

    /// Bytes counted against the output limit: the data plus headers and metadata.
    pub fn size(&self) -> usize {
        self.data.len()
            + self.content_type.as_ref().map_or(0, String::len)
            + self.branch.as_ref().map_or(0, String::len)
            + self
                .headers
                .iter()
                .map(|(name, value)| name.len() + value.len())
                .sum::<usize>()
    }
}

/// The kind of a guest-reported error; it tells the host whether retrying can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GuestErrorKind {
    /// The input does not satisfy the action; retrying the same input cannot succeed.
    InvalidInput,
    /// A connection or credential problem.
    Connection,
    /// A transient failure; the host may retry.
    Retryable,
    /// Any other failure.
    Fatal,
}

/// An error returned by the guest through the WIT `error` variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestError {
    /// How the host should treat it (retry or not).
    pub kind: GuestErrorKind,
    /// What went wrong, in words.
    pub message: String,
    /// For [`GuestErrorKind::Connection`]: the config-variable key of the connection at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection: Option<String>,
}

impl GuestError {
    /// A fatal error with `message`.
    pub fn fatal(message: impl Into<String>) -> Self {
        GuestError {
            kind: GuestErrorKind::Fatal,
            message: message.into(),
            connection: None,
        }
    }
}

impl std::fmt::Display for GuestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            GuestErrorKind::InvalidInput => "invalid input",
            GuestErrorKind::Connection => "connection error",
            GuestErrorKind::Retryable => "retryable error",
            GuestErrorKind::Fatal => "fatal error",
        };
        match &self.connection {
            Some(key) if !key.is_empty() => write!(f, "{kind} ({key}): {}", self.message),
            _ => write!(f, "{kind}: {}", self.message),
        }
    }
}

impl std::error::Error for GuestError {}

/// Identity of one execution, handed to the guest as `execution-context`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionContext {
    /// The execution.
    pub execution_id: String,
    /// The tenant (the vendor) it runs for.
    pub tenant_id: String,
    /// The tenant's customer whose instance it is, if any.
    pub customer_id: Option<String>,
    /// That customer's id in the tenant's own system.
    pub customer_external_id: Option<String>,
    /// The integration.
    pub integration_id: String,
    /// The instance.
    pub instance_id: String,
    /// The flow.
    pub flow_name: String,
    /// The step running, when the execution is one step of a flow.
    pub step: Option<String>,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// Milliseconds since the Unix epoch.
    pub started_at_ms: u64,
    /// Webhook URL of each flow of the instance, by flow name.
    pub webhook_urls: Vec<(String, String)>,
}

/// An HTTP request received by a webhook trigger.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpRequest {
    /// The HTTP method, upper-case.
    pub method: String,
    /// Path after the webhook URL.
    pub path: String,
    /// Query parameters in order, repeats kept.
    pub query: Vec<(String, String)>,
    /// Lower-cased header names.
    pub headers: Vec<(String, String)>,
    /// Serialized as standard base64 text.
    #[serde(with = "base64_bytes")]
    pub body: Vec<u8>,
}

/// An HTTP response shaped by a trigger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Headers in order.
    pub headers: Vec<(String, String)>,
    /// The `content-type`, when set apart from the headers.
    pub content_type: Option<String>,
    /// Serialized as standard base64 text.
    #[serde(with = "base64_bytes")]
    pub body: Vec<u8>,
}

impl HttpResponse {
    fn size(&self) -> usize {
        self.body.len()
            + self.content_type.as_ref().map_or(0, String::len)
            + self
                .headers
                .iter()
                .map(|(name, value)| name.len() + value.len())
                .sum::<usize>()
    }
}

/// What a trigger decided about a webhook request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "kebab-case")]
pub enum TriggerOutcome {
    /// Run the flow with `payload`.
    #[serde(rename_all = "camelCase")]
    Accept {
        /// What the flow's steps see as the trigger's result.
        payload: Data,
        /// The branch taken, for a trigger with branches.
        branch: Option<String>,
        /// An answer to the caller now, for a synchronous flow's trigger that answers itself.
        response: Option<HttpResponse>,
    },
    /// Do not run the flow; answer the caller with `response`.
    Respond {
        /// The answer.
        response: HttpResponse,
    },
}

impl TriggerOutcome {
    pub(crate) fn size(&self) -> usize {
        match self {
            TriggerOutcome::Accept {
                payload,
                branch,
                response,
            } => {
                payload.len()
                    + branch.as_ref().map_or(0, String::len)
                    + response.as_ref().map_or(0, HttpResponse::size)
            }
            TriggerOutcome::Respond { response } => response.size(),
        }
    }
}

/// Serde adapter that writes bytes as base64 text, so JSON stays compact and readable.
mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        STANDARD
            .decode(text.as_bytes())
            .map_err(|err| serde::de::Error::custom(format!("invalid base64: {err}")))
    }
}

#[cfg(test)]
mod depth_tests {
    use super::{MAX_JSON_DEPTH, json_too_deep};

    fn nested(depth: usize) -> String {
        format!(r#"{}"a\"]{{"{}"#, "[".repeat(depth), "]".repeat(depth))
    }

    /// The scanner and serde_json (what `state.set` uses) agree at the boundary.
    #[test]
    fn depth_limit_matches_serde_json() {
        for depth in [
            1,
            MAX_JSON_DEPTH - 1,
            MAX_JSON_DEPTH,
            MAX_JSON_DEPTH + 1,
            10_000,
        ] {
            let text = nested(depth);
            let serde_refuses = serde_json::from_str::<serde_json::Value>(&text).is_err();
            assert_eq!(json_too_deep(&text), serde_refuses, "depth {depth}");
        }
        let objects = format!(
            "{}1{}",
            r#"{"a":"#.repeat(MAX_JSON_DEPTH + 1),
            "}".repeat(MAX_JSON_DEPTH + 1)
        );
        assert!(json_too_deep(&objects));
        assert!(serde_json::from_str::<serde_json::Value>(&objects).is_err());
    }
}

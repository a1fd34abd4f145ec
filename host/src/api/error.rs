//! The API's one error shape: a status and `{"error": {"code", "message"}}`, plus
//! `details` (one entry per problem, with its path) when there are several. Client
//! mistakes get 4xx with a message that says what to fix; failures of the server get a
//! 500 whose details go to the log, not to the client.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::store::StoreError;

/// An error answered to an API client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    /// A stable machine-readable code (`not-found`, `invalid-request`, ...).
    pub code: &'static str,
    pub message: String,
    /// Each problem with where it is (e.g. every error of a flow definition); sent as
    /// `error.details` when not empty.
    pub details: Vec<ErrorDetail>,
}

/// One problem of a request, located by `path` (in the request body, for example
/// `flows[0].steps[2].inputs.title`; empty for the whole body).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ErrorDetail {
    pub path: String,
    pub message: String,
    /// Where a syntax error is, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: Vec::new(),
        }
    }

    /// The same error with `details`.
    pub fn with_details(mut self, details: Vec<ErrorDetail>) -> Self {
        self.details = details;
        self
    }

    /// 400: the request is malformed or invalid.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid-request", message)
    }

    /// 404: no such resource for this tenant.
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("{what} not found"),
        )
    }

    /// 409: the request conflicts with the current state.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 413: the body is larger than allowed.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "too-large", message)
    }

    /// 429: the caller sends faster than allowed; the message says the limit.
    pub fn rate_limited(message: impl Into<String>) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "rate-limited", message)
    }

    /// 500: the server failed; `detail` is logged, never sent.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error answering an API request");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the server's log has the details",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({"code": self.code, "message": self.message});
        if !self.details.is_empty() {
            error["details"] = json!(self.details);
        }
        let body = json!({ "error": error });
        (self.status, Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound(what) => ApiError::not_found(what),
            StoreError::Conflict(message) => ApiError::conflict(message),
            StoreError::Backend(detail) => ApiError::internal(detail),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "send the body as JSON with `content-type: application/json`",
            ),
            JsonRejection::BytesRejection(err) if err.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::too_large(err.body_text())
            }
            // The body parsed but does not fit the type: say where and what was
            // expected, never the value sent (a secret in the wrong place).
            JsonRejection::JsonDataError(err) => ApiError::invalid(unquoted(&err.body_text())),
            other => ApiError::invalid(other.body_text()),
        }
    }
}

/// A serde error message without the value it quotes: serde says `invalid type:
/// string "…", expected …`, `invalid value: integer `…`, expected …` or `unknown
/// variant `…`, expected …`; the value becomes its kind only (`string`, `integer`),
/// or goes. Everything else (the path, what was expected, unknown field names) stays.
pub fn unquoted(message: &str) -> String {
    const MARKERS: [&str; 3] = ["invalid type: ", "invalid value: ", "unknown variant "];
    let Some((at, marker)) = MARKERS
        .iter()
        .filter_map(|marker| message.find(marker).map(|at| (at, *marker)))
        .min_by_key(|(at, _)| *at)
    else {
        return message.to_string();
    };
    let start = at + marker.len();
    // The value ends where serde's `, expected` begins: the last one, since the value
    // (a string) may itself contain that text, and what is expected never does.
    let Some(end) = message[start..].rfind(", expected").map(|end| start + end) else {
        // No expectation to keep: drop everything after the marker.
        return format!("{}{}", &message[..start], "(value not shown)");
    };
    let unexpected = &message[start..end];
    let kind = if marker == "unknown variant " {
        String::new()
    } else {
        // `string "…"`, `integer `…``, `floating point `…``, `boolean `…``,
        // `character `…``, or a kind without a value (`map`, `sequence`, `null`...).
        let cut = unexpected.find(['"', '`']).unwrap_or(unexpected.len());
        unexpected[..cut].trim_end().to_string()
    };
    let mut out = String::with_capacity(message.len());
    out.push_str(&message[..start]);
    if marker == "unknown variant " {
        out.truncate(out.trim_end().len());
    } else {
        out.push_str(&kind);
    }
    out.push_str(&message[end..]);
    out
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::invalid(rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::invalid(rejection.body_text())
    }
}

#[cfg(test)]
mod tests {
    use super::unquoted;

    #[test]
    fn serde_messages_lose_the_values_they_quote() {
        assert_eq!(
            unquoted(
                r#"Failed to deserialize the JSON body into the target type: connections.github: invalid type: string "ghp_secret, expected x", expected struct ConnectionInput at line 1 column 40"#
            ),
            "Failed to deserialize the JSON body into the target type: connections.github: invalid type: string, expected struct ConnectionInput at line 1 column 40"
        );
        assert_eq!(
            unquoted("a: invalid value: integer `12345`, expected a string"),
            "a: invalid value: integer, expected a string"
        );
        assert_eq!(
            unquoted("kind: unknown variant `s3cret`, expected `a` or `b` at line 1"),
            "kind: unknown variant, expected `a` or `b` at line 1"
        );
        assert_eq!(
            unquoted("x: invalid type: map, expected a string"),
            "x: invalid type: map, expected a string"
        );
        assert_eq!(
            unquoted("missing field `name` at line 1 column 2"),
            "missing field `name` at line 1 column 2"
        );
        assert_eq!(
            unquoted(r#"x: invalid type: string "s3cret""#),
            "x: invalid type: (value not shown)"
        );
    }
}

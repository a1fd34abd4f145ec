//! [`Error`]: why a handler failed, in the four kinds the host acts on (see the WIT
//! `error` variant): invalid input, a connection problem, a retryable failure, or a
//! fatal one. Converts to and from the WIT type.

use std::fmt;

use crate::bindings::flow::sluice::flow::types as wit;

/// Why an action, trigger, data source, hook or flow failed. Each kind tells the host
/// what to do next, so pick the one that matches what a retry would achieve:
///
/// | kind | meaning | host |
/// |---|---|---|
/// | [`Error::InvalidInput`] | the input (or the instance's configuration) cannot work | does not retry |
/// | [`Error::Connection`] | credentials missing, expired or refused | flags the connection |
/// | [`Error::Retryable`] | transient (rate limit, 5xx, timeout, store unavailable) | may retry |
/// | [`Error::Fatal`] | anything else | does not retry |
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The input does not satisfy the handler: retrying the same input cannot succeed.
    InvalidInput(String),
    /// Credentials are missing, expired or refused. `key` is the connection's
    /// config-variable key (empty when unknown), so the host can flag it.
    Connection {
        /// The connection's config-variable key.
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// A transient failure: the host may retry.
    Retryable(String),
    /// Any other failure: do not retry.
    Fatal(String),
}

impl Error {
    /// The input does not satisfy the handler.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::InvalidInput(message.into())
    }

    /// A problem with the connection whose config-variable key is `key`.
    pub fn connection(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Connection {
            key: key.into(),
            message: message.into(),
        }
    }

    /// A transient failure the host may retry.
    pub fn retryable(message: impl Into<String>) -> Self {
        Self::Retryable(message.into())
    }

    /// A failure that retrying will not fix.
    pub fn fatal(message: impl Into<String>) -> Self {
        Self::Fatal(message.into())
    }

    /// The human-readable message, whatever the kind.
    pub fn message(&self) -> &str {
        match self {
            Self::InvalidInput(m) | Self::Retryable(m) | Self::Fatal(m) => m,
            Self::Connection { message, .. } => message,
        }
    }

    /// The kind as the WIT names it: `invalid-input`, `connection`, `retryable`, `fatal`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidInput(_) => "invalid-input",
            Self::Connection { .. } => "connection",
            Self::Retryable(_) => "retryable",
            Self::Fatal(_) => "fatal",
        }
    }

    /// The same error with `prefix: ` in front of its message, keeping its kind;
    /// for saying which step of a handler failed.
    pub fn context(self, prefix: impl fmt::Display) -> Self {
        let prefixed = |m: String| format!("{prefix}: {m}");
        match self {
            Self::InvalidInput(m) => Self::InvalidInput(prefixed(m)),
            Self::Connection { key, message } => Self::Connection {
                key,
                message: prefixed(message),
            },
            Self::Retryable(m) => Self::Retryable(prefixed(m)),
            Self::Fatal(m) => Self::Fatal(prefixed(m)),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connection { key, message } if !key.is_empty() => {
                write!(f, "connection `{key}`: {message}")
            }
            other => write!(f, "{}: {}", other.kind(), other.message()),
        }
    }
}

impl std::error::Error for Error {}

/// Most JSON that a handler parses itself is its input, so `?` on a serde_json error
/// reports invalid input. JSON from elsewhere (an HTTP response, state) has its own
/// mapping in the SDK; use [`Error::fatal`] explicitly for such documents.
impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Self::InvalidInput(e.to_string())
    }
}

impl From<Error> for wit::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidInput(m) => wit::Error::InvalidInput(m),
            Error::Connection { key, message } => {
                wit::Error::Connection(wit::ConnectionProblem { key, message })
            }
            Error::Retryable(m) => wit::Error::Retryable(m),
            Error::Fatal(m) => wit::Error::Fatal(m),
        }
    }
}

impl From<wit::Error> for Error {
    fn from(e: wit::Error) -> Self {
        match e {
            wit::Error::InvalidInput(m) => Error::InvalidInput(m),
            wit::Error::Connection(p) => Error::Connection {
                key: p.key,
                message: p.message,
            },
            wit::Error::Retryable(m) => Error::Retryable(m),
            wit::Error::Fatal(m) => Error::Fatal(m),
        }
    }
}

/// Deserializes `text` (JSON from the host) into `T`, reporting the failing field's
/// path: `invalid input at `priority`: invalid type: integer `3`, expected a string`.
/// Empty text and `null` read as `{}`, so a call without parameters reaches a handler
/// whose input has only optional fields.
pub(crate) fn parse_input<T: serde::de::DeserializeOwned>(
    text: &str,
    what: &str,
) -> Result<T, Error> {
    let trimmed = text.trim();
    let text = if trimmed.is_empty() || trimmed == "null" {
        "{}"
    } else {
        text
    };
    parse_json(text, what)
}

/// Deserializes `text` into `T` as is (a flow's payload: `null` stays `null`), with
/// the failing field's path in the [`Error::InvalidInput`].
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    text: &str,
    what: &str,
) -> Result<T, Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            Error::invalid_input(format!("invalid {what}: {inner}"))
        } else {
            Error::invalid_input(format!("invalid {what} at `{path}`: {inner}"))
        }
    })?;
    // Trailing characters after the document are a malformed input too.
    de.end()
        .map_err(|e| Error::invalid_input(format!("invalid {what}: {e}")))?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Ticket {
        subject: String,
        #[serde(default)]
        priority: Option<String>,
        tags: Vec<String>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct OnlyOptional {
        #[serde(default)]
        excited: bool,
    }

    #[test]
    fn input_errors_name_the_path() {
        let err = parse_input::<Ticket>(r#"{"subject":"a","priority":3,"tags":[]}"#, "input")
            .unwrap_err();
        assert_eq!(err.kind(), "invalid-input");
        assert!(err.message().contains("at `priority`"), "{err}");
        let err = parse_input::<Ticket>(r#"{"subject":"a","tags":["x",1]}"#, "input").unwrap_err();
        assert!(err.message().contains("at `tags[1]`"), "{err}");
        let err = parse_input::<Ticket>(r#"{"tags":[]}"#, "input").unwrap_err();
        assert!(err.message().contains("missing field `subject`"), "{err}");
        let err = parse_input::<Ticket>("{", "input").unwrap_err();
        assert_eq!(err.kind(), "invalid-input");
        let err = parse_input::<OnlyOptional>("{} x", "input").unwrap_err();
        assert!(err.message().contains("trailing"), "{err}");
    }

    #[test]
    fn empty_and_null_input_read_as_an_empty_object() {
        for text in ["", "null", "  ", "{}"] {
            assert_eq!(
                parse_input::<OnlyOptional>(text, "input").unwrap(),
                OnlyOptional { excited: false }
            );
        }
    }

    #[test]
    fn converts_to_and_from_the_wit_error() {
        let cases = [
            Error::invalid_input("a"),
            Error::connection("oauth", "expired"),
            Error::retryable("429"),
            Error::fatal("boom"),
        ];
        for e in cases {
            let wit: wit::Error = e.clone().into();
            assert_eq!(Error::from(wit), e);
        }
        match wit::Error::from(Error::connection("k", "m")) {
            wit::Error::Connection(p) => {
                assert_eq!((p.key.as_str(), p.message.as_str()), ("k", "m"))
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn context_keeps_the_kind() {
        let e = Error::retryable("timed out").context("listing repositories");
        assert_eq!(e, Error::retryable("listing repositories: timed out"));
        assert_eq!(
            Error::connection("gh", "401").to_string(),
            "connection `gh`: 401"
        );
        assert_eq!(Error::fatal("x").to_string(), "fatal: x");
        let from_json: Error = serde_json::from_str::<u8>("\"a\"").unwrap_err().into();
        assert_eq!(from_json.kind(), "invalid-input");
    }
}

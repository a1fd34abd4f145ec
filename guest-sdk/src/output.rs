//! [`Output`]: what an action or a flow returns (JSON or bytes, plus the status,
//! headers and content type of a synchronous response, and a branch), and
//! [`IntoOutput`], which lets a handler return any `Serialize` value instead.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::flow::sluice::flow::types as wit;
use crate::error::Error;

/// The data of an [`Output`] or of an accepted trigger payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    /// A JSON document, as text.
    Json(String),
    /// Raw bytes (a file, a CSV export) whose meaning is given by a content type.
    Bytes(Vec<u8>),
}

impl Data {
    /// Serializes `value` to JSON data.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Self, Error> {
        to_json_text(value).map(Data::Json)
    }
}

impl From<wit::Data> for Data {
    fn from(d: wit::Data) -> Self {
        match d {
            wit::Data::Json(text) => Data::Json(text),
            wit::Data::Bytes(bytes) => Data::Bytes(bytes),
        }
    }
}

impl From<Data> for wit::Data {
    fn from(d: Data) -> Self {
        match d {
            Data::Json(text) => wit::Data::Json(text),
            Data::Bytes(bytes) => wit::Data::Bytes(bytes),
        }
    }
}

/// What an action or a code-native flow returns, and what [`invoke`] hands back.
///
/// Most handlers return a plain `Serialize` value (see [`IntoOutput`]); build an
/// `Output` to return bytes, or to shape the HTTP response of a synchronous call:
///
/// ```
/// # use sluice_sdk::Output;
/// let created = Output::json(&serde_json::json!({"id": 7}))
///     .status(201)
///     .header("location", "/tickets/7");
/// let csv = Output::bytes(b"id,subject\n7,Printer\n".to_vec(), "text/csv");
/// # let _ = (created, csv);
/// ```
///
/// [`invoke`]: crate::FlowContext::invoke
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    data: Data,
    content_type: Option<String>,
    status: Option<u16>,
    headers: Vec<(String, String)>,
    branch: Option<String>,
    /// A serialization failure of [`Output::json`], reported when the output is
    /// returned, so building an output never needs a `?`.
    deferred: Option<Error>,
}

impl Output {
    fn from_data(data: Data) -> Self {
        Self {
            data,
            content_type: None,
            status: None,
            headers: Vec::new(),
            branch: None,
            deferred: None,
        }
    }

    /// JSON data serialized from `value`. A value that cannot be serialized (a map
    /// with non-string keys) fails the call with [`Error::Fatal`] when returned.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Self {
        match to_json_text(value) {
            Ok(text) => Self::from_data(Data::Json(text)),
            Err(e) => {
                let mut output = Self::from_data(Data::Json("null".to_string()));
                output.deferred = Some(e);
                output
            }
        }
    }

    /// JSON data from text that already is a JSON document (passed through as is;
    /// the host refuses an output that does not parse).
    pub fn json_text(text: impl Into<String>) -> Self {
        Self::from_data(Data::Json(text.into()))
    }

    /// Raw bytes with their MIME type.
    pub fn bytes(bytes: impl Into<Vec<u8>>, content_type: impl Into<String>) -> Self {
        Self::from_data(Data::Bytes(bytes.into())).content_type(content_type)
    }

    /// UTF-8 text, as `text/plain; charset=utf-8`.
    pub fn text(text: impl Into<String>) -> Self {
        Self::bytes(text.into().into_bytes(), "text/plain; charset=utf-8")
    }

    /// Sets the MIME type of the data (`application/json` is assumed for JSON).
    pub fn content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Some(content_type.into());
        self
    }

    /// Sets the HTTP status of a synchronous response (default 200).
    pub fn status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// Adds a header to a synchronous response.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Names the branch to follow; the action must declare it (see
    /// [`Action::branches`](crate::Action::branches)).
    pub fn branch(mut self, branch: impl Into<String>) -> Self {
        self.branch = Some(branch.into());
        self
    }

    /// The data.
    pub fn data(&self) -> &Data {
        &self.data
    }

    /// The MIME type, when set.
    pub fn get_content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }

    /// The HTTP status, when set.
    pub fn get_status(&self) -> Option<u16> {
        self.status
    }

    /// The extra response headers.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The branch, when set.
    pub fn get_branch(&self) -> Option<&str> {
        self.branch.as_deref()
    }

    /// Parses JSON data as `T`. Bytes, or JSON of another shape, are a
    /// [`Error::Fatal`]: the output came from code, not from the caller.
    pub fn parse_json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        match &self.data {
            Data::Json(text) => {
                let mut de = serde_json::Deserializer::from_str(text);
                serde_path_to_error::deserialize(&mut de).map_err(|e| {
                    Error::fatal(format!(
                        "output does not have the expected shape at `{}`: {}",
                        e.path(),
                        e.inner()
                    ))
                })
            }
            Data::Bytes(_) => Err(Error::fatal(format!(
                "output is bytes ({}), not JSON",
                self.content_type.as_deref().unwrap_or("no content type")
            ))),
        }
    }

    #[doc(hidden)]
    pub fn into_wit(self) -> Result<wit::Output, Error> {
        if let Some(e) = self.deferred {
            return Err(e);
        }
        Ok(wit::Output {
            data: self.data.into(),
            content_type: self.content_type,
            status: self.status,
            headers: self.headers,
            branch: self.branch,
        })
    }
}

impl From<wit::Output> for Output {
    fn from(o: wit::Output) -> Self {
        Self {
            data: o.data.into(),
            content_type: o.content_type,
            status: o.status,
            headers: o.headers,
            branch: o.branch,
            deferred: None,
        }
    }
}

/// What a handler may return: an [`Output`], or any `Serialize` value, which becomes
/// JSON data (`()` becomes `null`).
pub trait IntoOutput {
    /// The value as the [`Output`] the host receives.
    fn into_output(self) -> Output;
}

impl IntoOutput for Output {
    fn into_output(self) -> Output {
        self
    }
}

impl<T: Serialize> IntoOutput for T {
    fn into_output(self) -> Output {
        Output::json(&self)
    }
}

/// Serializes `value` to JSON text; failures come from the author's types, hence fatal.
pub(crate) fn to_json_text<T: Serialize + ?Sized>(value: &T) -> Result<String, Error> {
    serde_json::to_string(value)
        .map_err(|e| Error::fatal(format!("value cannot be serialized to JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    #[test]
    fn serialize_values_become_json_outputs() {
        let out = json!({"id": 1}).into_output().into_wit().unwrap();
        assert!(matches!(out.data, wit::Data::Json(ref t) if t == r#"{"id":1}"#));
        assert_eq!(out.content_type, None);
        let unit = ().into_output().into_wit().unwrap();
        assert!(matches!(unit.data, wit::Data::Json(ref t) if t == "null"));
    }

    #[test]
    fn built_outputs_keep_every_field() {
        let out = Output::text("hi")
            .status(201)
            .header("x-a", "1")
            .branch("done")
            .into_wit()
            .unwrap();
        assert!(matches!(out.data, wit::Data::Bytes(ref b) if b == b"hi"));
        assert_eq!(
            out.content_type.as_deref(),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(out.status, Some(201));
        assert_eq!(out.headers, vec![("x-a".to_string(), "1".to_string())]);
        assert_eq!(out.branch.as_deref(), Some("done"));
    }

    #[test]
    fn unserializable_values_fail_when_returned() {
        let mut map = BTreeMap::new();
        map.insert((1, 2), "tuple keys are not JSON object keys");
        let err = Output::json(&map).into_wit().unwrap_err();
        assert_eq!(err.kind(), "fatal");
    }

    #[test]
    fn parses_json_outputs() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct Count {
            count: u32,
        }
        let out = Output::json(&json!({"count": 3}));
        assert_eq!(out.parse_json::<Count>().unwrap(), Count { count: 3 });
        let err = Output::json(&json!({"count": "x"}))
            .parse_json::<Count>()
            .unwrap_err();
        assert!(err.message().contains("`count`"), "{err}");
        assert_eq!(
            Output::bytes(vec![1], "image/png")
                .parse_json::<Count>()
                .unwrap_err()
                .kind(),
            "fatal"
        );
    }
}

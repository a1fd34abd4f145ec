//! Values: how a step's inputs are built from the execution's slots (step results,
//! loop variables) and config variables, and how outputs become values and record
//! entries (JSON parsed, bytes as `{contentType, base64}`, large results stored).

use std::sync::Arc;

use base64::Engine as _;
use serde_json::{Map, Value};

use super::options::EngineOptions;
use crate::flow::catalog::InputSchema;
use crate::flow::plan::{CInput, CPart, CRef, ConfigVarPlan, Fields, StopNode};
use crate::flow::record::{FlowResponse, InputSummary, RecordedValue, StepError, StepErrorKind};
use crate::flow::reference::{RefField, lookup};
use crate::flow::template::append_value;
use crate::flow::validate::{loop_count, response_headers, response_status};
use crate::{ConfigSource, Data, HttpRequest, HttpResponse};

/// What one step's slot holds during an execution.
#[derive(Default)]
pub(crate) struct Slot {
    pub results: Option<Arc<Value>>,
    pub branch: Option<Value>,
    pub item: Option<Arc<Value>>,
    pub index: Option<Value>,
}

/// What inputs read: the slots of the flow's steps and the instance's config values.
pub(crate) struct Values<'a> {
    config_vars: &'a [ConfigVarPlan],
    /// Each config variable's value: the instance's, else its default.
    config: Vec<Option<Value>>,
    pub slots: Vec<Slot>,
}

impl<'a> Values<'a> {
    pub(crate) fn new(
        config_vars: &'a [ConfigVarPlan],
        source: &dyn ConfigSource,
        slots: usize,
    ) -> Self {
        let config = config_vars
            .iter()
            .map(|var| {
                source
                    .get(&var.key)
                    .and_then(|text| serde_json::from_str(&text).ok())
                    .or_else(|| var.default.clone())
            })
            .collect();
        let mut filled = Vec::with_capacity(slots);
        filled.resize_with(slots, Slot::default);
        Values {
            config_vars,
            config,
            slots: filled,
        }
    }

    pub(crate) fn reference(&self, reference: &CRef) -> Option<&Value> {
        let slot = &self.slots[reference.slot];
        match reference.field {
            RefField::Results => lookup(slot.results.as_deref()?, &reference.path),
            RefField::Branch => slot.branch.as_ref(),
            RefField::CurrentItem => lookup(slot.item.as_deref()?, &reference.path),
            RefField::Index => slot.index.as_ref(),
        }
    }

    fn config_value(&self, index: usize) -> Result<&Value, StepError> {
        self.config
            .get(index)
            .and_then(Option::as_ref)
            .ok_or_else(|| {
                let key = self
                    .config_vars
                    .get(index)
                    .map_or("?", |var| var.key.as_str());
                StepError::new(
                    StepErrorKind::Input,
                    format!(
                        "config variable `{key}` has no value for this instance and no default"
                    ),
                )
            })
    }

    fn render(&self, parts: &[CPart]) -> Result<String, StepError> {
        let mut out = String::new();
        for part in parts {
            match part {
                CPart::Text(text) => out.push_str(text),
                CPart::Ref(reference) => append_value(&mut out, self.reference(reference)),
                CPart::Config(index) => append_value(&mut out, Some(self.config_value(*index)?)),
            }
        }
        Ok(out)
    }

    /// The value of an input (`None`: a reference to nothing, JavaScript's undefined).
    pub(crate) fn resolve(&self, input: &CInput) -> Result<Option<Value>, StepError> {
        Ok(match input {
            CInput::Const { value, .. } => Some(value.clone()),
            CInput::Ref(reference) => self.reference(reference).cloned(),
            CInput::Config(index) => Some(self.config_value(*index)?.clone()),
            CInput::Template(parts) => Some(Value::String(self.render(parts)?)),
            CInput::List(items) => Some(Value::Array(
                items
                    .iter()
                    .map(|item| self.resolve(item).map(|value| value.unwrap_or(Value::Null)))
                    .collect::<Result<_, _>>()?,
            )),
            CInput::Object(fields) => Some(self.resolve_fields(fields)?),
        })
    }

    /// An object of inputs; inputs that resolve to nothing are left out.
    pub(crate) fn resolve_fields(&self, fields: &Fields) -> Result<Value, StepError> {
        let mut object = Map::new();
        for (name, _, input) in fields {
            if let Some(value) = self.resolve(input)? {
                object.insert(name.clone(), value);
            }
        }
        Ok(Value::Object(object))
    }

    /// An object of inputs as JSON text, written without copying referenced values.
    pub(crate) fn write_fields(&self, fields: &Fields) -> Result<String, StepError> {
        let mut out = Vec::with_capacity(64);
        self.write_object(&mut out, fields)?;
        // Only JSON (UTF-8) was written.
        String::from_utf8(out).map_err(|err| StepError::new(StepErrorKind::Input, err.to_string()))
    }

    fn write_object(&self, out: &mut Vec<u8>, fields: &Fields) -> Result<(), StepError> {
        out.push(b'{');
        let mut first = true;
        for (_, quoted, input) in fields {
            if let CInput::Ref(reference) = input
                && self.reference(reference).is_none()
            {
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            out.extend_from_slice(quoted.as_bytes());
            out.push(b':');
            self.write_input(out, input)?;
        }
        out.push(b'}');
        Ok(())
    }

    fn write_input(&self, out: &mut Vec<u8>, input: &CInput) -> Result<(), StepError> {
        let write = |out: &mut Vec<u8>, value: &Value| {
            serde_json::to_writer(out, value)
                .map_err(|err| StepError::new(StepErrorKind::Input, err.to_string()))
        };
        match input {
            CInput::Const { text, .. } => out.extend_from_slice(text.as_bytes()),
            CInput::Ref(reference) => match self.reference(reference) {
                Some(value) => write(out, value)?,
                None => out.extend_from_slice(b"null"),
            },
            CInput::Config(index) => write(out, self.config_value(*index)?)?,
            CInput::Template(parts) => {
                let text = self.render(parts)?;
                serde_json::to_writer(&mut *out, &text)
                    .map_err(|err| StepError::new(StepErrorKind::Input, err.to_string()))?;
            }
            CInput::List(items) => {
                out.push(b'[');
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        out.push(b',');
                    }
                    self.write_input(out, item)?;
                }
                out.push(b']');
            }
            CInput::Object(fields) => self.write_object(out, fields)?,
        }
        Ok(())
    }

    /// A stop-execution step's response, and its body to record.
    pub(crate) fn stop_response(
        &self,
        node: &StopNode,
    ) -> Result<(FlowResponse, Option<Value>), StepError> {
        let field = |input: &Option<CInput>| -> Result<Option<Value>, StepError> {
            match input {
                Some(input) => self.resolve(input),
                None => Ok(None),
            }
        };
        let status = match field(&node.status)? {
            Some(value) => {
                response_status(&value).map_err(|m| StepError::new(StepErrorKind::Input, m))?
            }
            None => 200,
        };
        let headers = match field(&node.headers)? {
            Some(value) => {
                response_headers(&value).map_err(|m| StepError::new(StepErrorKind::Input, m))?
            }
            None => Vec::new(),
        };
        let content_type = match field(&node.content_type)? {
            Some(Value::String(text)) => Some(text),
            None | Some(Value::Null) => None,
            Some(other) => {
                return Err(StepError::new(
                    StepErrorKind::Input,
                    format!("`contentType` must be a string, got {other}"),
                ));
            }
        };
        let body = field(&node.body)?;
        Ok((
            FlowResponse {
                status,
                headers,
                content_type,
                body: None,
            },
            body,
        ))
    }
}

/// What a loop iterates: a list's items, or `0..count`.
pub(crate) enum LoopItems {
    List(Vec<Value>),
    Count(u64),
}

impl LoopItems {
    pub(crate) fn size(&self) -> usize {
        match self {
            LoopItems::List(items) => items.len(),
            LoopItems::Count(count) => usize::try_from(*count).unwrap_or(usize::MAX),
        }
    }

    pub(crate) fn values(self) -> Box<dyn Iterator<Item = Value> + Send> {
        match self {
            LoopItems::List(items) => Box::new(items.into_iter()),
            LoopItems::Count(count) => Box::new((0..count).map(Value::from)),
        }
    }
}

/// What a loop iterates, from its resolved `items` (a list) or `count`. A count is
/// iterated, not materialized: one from a request may be huge, and the cap on step
/// runs ends such a loop.
pub(crate) fn loop_items(over_items: bool, source: Option<Value>) -> Result<LoopItems, StepError> {
    let input = |message: String| StepError::new(StepErrorKind::Input, message);
    match (over_items, source) {
        (true, Some(Value::Array(items))) => Ok(LoopItems::List(items)),
        (true, other) => Err(input(format!(
            "`items` must be a list, got {}",
            other.map_or("nothing".to_string(), |value| value.to_string())
        ))),
        (false, source) => source
            .as_ref()
            .ok_or_else(|| "`count` resolved to nothing".to_string())
            .and_then(loop_count)
            .map(LoopItems::Count)
            .map_err(input),
    }
}

/// An input that does not match its action's schema, as the step's error.
pub(crate) fn schema_error(component: &str, action: &str, detail: &str) -> StepError {
    StepError::new(
        StepErrorKind::InvalidInput,
        format!("the input does not match the schema of `{component}.{action}`: {detail}"),
    )
}

/// Checks an action's input against its schema, the problems listed with their
/// JSON pointers.
pub(crate) fn check_input(
    schema: &InputSchema,
    value: &Value,
    component: &str,
    action: &str,
) -> Result<(), StepError> {
    schema.check(value).map_err(|problems| {
        let detail: Vec<String> = problems
            .into_iter()
            .map(|(pointer, message)| {
                if pointer.is_empty() {
                    message
                } else {
                    format!("{pointer}: {message}")
                }
            })
            .collect();
        schema_error(component, action, &detail.join("; "))
    })
}

/// An output's data as the value later steps reference, and as the record keeps it.
/// JSON that does not parse is an error, never a string: a guest's output was checked
/// by the sandbox (it parses, at most `MAX_JSON_DEPTH` deep), but a child flow's
/// response is built by the engine and may nest deeper.
pub(crate) async fn output_value(
    options: &EngineOptions,
    execution_id: &str,
    key: &str,
    data: Data,
    content_type: Option<&str>,
) -> Result<(Arc<Value>, RecordedValue), StepError> {
    let (value, text) = match data {
        Data::Json(text) => (json_result(&text)?, Some(text)),
        bytes @ Data::Bytes(_) => (data_value(bytes, content_type), None),
    };
    let value = Arc::new(value);
    let recorded = recorded_value(options, execution_id, key, &value, text).await;
    Ok((value, recorded))
}

/// A value as the record keeps it: inline when its JSON (`text`, when the caller has
/// it) fits the cap, else stored in the result store and referenced.
pub(crate) async fn recorded_value(
    options: &EngineOptions,
    execution_id: &str,
    key: &str,
    value: &Arc<Value>,
    text: Option<String>,
) -> RecordedValue {
    let limit = options.inline_result_bytes;
    let small = match &text {
        Some(text) => text.len() <= limit,
        None => is_small(value, limit),
    };
    if small {
        return RecordedValue::Inline(Arc::clone(value));
    }
    let text = text.unwrap_or_else(|| value.to_string());
    let bytes = text.len();
    let preview = InputSummary::of(&text, options.input_preview_bytes).preview;
    match options
        .results
        .put(execution_id, key, text.into_bytes())
        .await
    {
        Ok(reference) => RecordedValue::Stored {
            reference,
            bytes,
            preview,
        },
        // Keeping the result beats losing it when the store is down.
        Err(_) => RecordedValue::Inline(Arc::clone(value)),
    }
}

fn is_small(value: &Value, limit: usize) -> bool {
    // Cheap for the common small values; large ones are serialized once to measure.
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) => true,
        Value::String(text) => text.len() + 2 <= limit,
        _ => serde_json::to_vec(value).map_or(true, |bytes| bytes.len() <= limit),
    }
}

/// A step's JSON result as a value; what cannot be read is an `invalid-output` error
/// that says why.
fn json_result(text: &str) -> Result<Value, StepError> {
    serde_json::from_str(text).map_err(|err| {
        let message = if serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() {
            format!(
                "the result is JSON nested more than {} levels deep, the most a flow reads",
                crate::MAX_JSON_DEPTH
            )
        } else {
            format!("the result is not JSON: {err}")
        };
        StepError::new(StepErrorKind::InvalidOutput, message)
    })
}

/// A trigger's accepted payload (or an action's data) as a JSON value: JSON data
/// parsed, bytes as `{contentType, base64}`, the one form every step result, record
/// and invoked call gives binary data.
pub fn data_value(data: Data, content_type: Option<&str>) -> Value {
    match data {
        Data::Json(text) => serde_json::from_str(&text).unwrap_or(Value::String(text)),
        Data::Bytes(bytes) => {
            let mut object = Map::new();
            object.insert(
                "contentType".into(),
                Value::String(
                    content_type
                        .unwrap_or("application/octet-stream")
                        .to_string(),
                ),
            );
            object.insert(
                "base64".into(),
                Value::String(base64::engine::general_purpose::STANDARD.encode(bytes)),
            );
            Value::Object(object)
        }
    }
}

/// A request body as the trigger's `body`: JSON when it parses, text when it is
/// UTF-8, `{contentType, base64}` otherwise; `null` when empty. JSON nested deeper
/// than [`MAX_JSON_DEPTH`](crate::MAX_JSON_DEPTH) (what every reader in Sluice
/// takes, and what a guest may return) is an error: read as text, it would turn a
/// caller's object into a string that conditions then misread.
pub(crate) fn body_value(body: &[u8], content_type: Option<&str>) -> Result<Value, StepError> {
    if body.is_empty() {
        return Ok(Value::Null);
    }
    match serde_json::from_slice(body) {
        Ok(value) => return Ok(value),
        // `IgnoredAny` reads without a depth limit (and without recursing), so it
        // tells JSON that is only too deep from text that is no JSON at all.
        Err(_) if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok() => {
            return Err(StepError::new(
                StepErrorKind::InvalidInput,
                format!(
                    "the request body is JSON nested more than {} levels deep, the most \
                     a flow reads",
                    crate::MAX_JSON_DEPTH
                ),
            ));
        }
        Err(_) => {}
    }
    Ok(match std::str::from_utf8(body) {
        Ok(text) => Value::String(text.to_string()),
        Err(_) => data_value(Data::Bytes(body.to_vec()), content_type),
    })
}

pub(crate) fn header<'r>(request: &'r HttpRequest, name: &str) -> Option<&'r str> {
    request
        .headers
        .iter()
        .find(|(header, _)| header.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

/// `trigger.results`: `{method, path, query, headers, body}`, `body` being what the
/// trigger accepted. Header names are lower-cased and repeated headers joined with
/// `, `; a repeated query parameter keeps its last value.
pub fn trigger_results(request: &HttpRequest, body: Value) -> Value {
    let mut headers = Map::new();
    for (name, value) in &request.headers {
        let name = name.to_ascii_lowercase();
        match headers.get_mut(&name) {
            Some(Value::String(existing)) => {
                existing.push_str(", ");
                existing.push_str(value);
            }
            _ => {
                headers.insert(name, Value::String(value.clone()));
            }
        }
    }
    let query: Map<String, Value> = request
        .query
        .iter()
        .map(|(name, value)| (name.clone(), Value::String(value.clone())))
        .collect();
    let mut results = Map::new();
    results.insert("method".into(), Value::String(request.method.clone()));
    results.insert("path".into(), Value::String(request.path.clone()));
    results.insert("query".into(), Value::Object(query));
    results.insert("headers".into(), Value::Object(headers));
    results.insert("body".into(), body);
    Value::Object(results)
}

/// The payload of a code-native flow: the whole trigger result plus the trigger's
/// `branch` (`null` when none), as Prismatic's code-native flows get it, so a flow
/// can tell deliveries apart by their headers and act on the trigger's decision.
pub fn code_flow_payload(results: &Value, branch: Option<&Value>) -> Value {
    match results {
        Value::Object(results) => {
            let mut payload = results.clone();
            payload.insert("branch".into(), branch.cloned().unwrap_or(Value::Null));
            Value::Object(payload)
        }
        other => other.clone(),
    }
}

/// A trigger's HTTP response as the flow's response.
pub(crate) fn http_response(response: HttpResponse) -> FlowResponse {
    let body = if response.body.is_empty() {
        None
    } else {
        Some(RecordedValue::Inline(Arc::new(
            match String::from_utf8(response.body) {
                Ok(text) => Value::String(text),
                Err(err) => data_value(
                    Data::Bytes(err.into_bytes()),
                    response.content_type.as_deref(),
                ),
            },
        )))
    };
    FlowResponse {
        status: response.status,
        headers: response.headers,
        content_type: response.content_type,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_results_normalize_headers() {
        let request = HttpRequest {
            method: "POST".into(),
            path: "x".into(),
            query: vec![("a".into(), "1".into()), ("a".into(), "2".into())],
            headers: vec![
                ("X-Thing".into(), "one".into()),
                ("x-thing".into(), "two".into()),
            ],
            body: br#"{"n": 1}"#.to_vec(),
        };
        let body = body_value(&request.body, None).unwrap();
        assert_eq!(
            trigger_results(&request, body),
            json!({
                "method": "POST", "path": "x", "query": {"a": "2"},
                "headers": {"x-thing": "one, two"}, "body": {"n": 1}
            })
        );
        assert_eq!(body_value(b"", None), Ok(Value::Null));
        assert_eq!(body_value(b"plain", None), Ok(json!("plain")));
        assert_eq!(
            body_value(&[0xff, 0xfe], Some("image/png")),
            Ok(json!({"contentType": "image/png", "base64": "//4="}))
        );
    }
}

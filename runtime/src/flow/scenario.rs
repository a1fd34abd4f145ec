//! Shared scenarios: a sequence of requests to the flows of one instance (its state,
//! config and connections persisting between them), written once (YAML or JSON) and
//! run against any implementation of the integration, declarative or code-native, so
//! a test can assert the same observable effects on both.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::definition::Format;
use super::executor::{FlowEngine, RunEnv, RunError};
use super::plan::Plan;
use super::record::{ExecutionRecord, ExecutionStatus};
use crate::{ConfigSource, HttpRequest, StaticConfig};

/// A scenario: instance config and the events to send, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scenario {
    /// Names the scenario in reports.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// What the scenario checks, for people reading it.
    pub description: Option<String>,
    /// Config variables of the instance, layered over the environment's config.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, Value>,
    /// The events to send, in order.
    pub events: Vec<ScenarioEvent>,
}

/// One request to one flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScenarioEvent {
    /// Names the event in reports.
    pub label: String,
    /// The route the event goes to; an [`Implementation`] maps routes to its flow
    /// keys (by default, a route is a flow key).
    pub flow: String,
    #[serde(default)]
    /// The request the event sends.
    pub request: ScenarioRequest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// What the execution must end with; nothing is checked when absent.
    pub expect: Option<Expectation>,
}

/// The request an event sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScenarioRequest {
    #[serde(default = "post")]
    /// HTTP method (default `POST`).
    pub method: String,
    #[serde(default)]
    /// Request path (default empty).
    pub path: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    /// Query parameters.
    pub query: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    /// Request headers.
    pub headers: BTreeMap<String, String>,
    /// A JSON body (sent with `content-type: application/json` unless a header says
    /// otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// A body sent as is, instead of `body`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_body: Option<String>,
}

fn post() -> String {
    "POST".into()
}

impl Default for ScenarioRequest {
    fn default() -> Self {
        ScenarioRequest {
            method: post(),
            path: String::new(),
            query: BTreeMap::new(),
            headers: BTreeMap::new(),
            body: None,
            raw_body: None,
        }
    }
}

impl ScenarioRequest {
    /// The request as the trigger receives it (header names lower-cased).
    pub fn to_http(&self) -> HttpRequest {
        let mut headers: Vec<(String, String)> = self
            .headers
            .iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value.clone()))
            .collect();
        let body = match (&self.raw_body, &self.body) {
            (Some(raw), _) => raw.clone().into_bytes(),
            (None, Some(body)) => {
                if !headers.iter().any(|(name, _)| name == "content-type") {
                    headers.push(("content-type".into(), "application/json".into()));
                }
                body.to_string().into_bytes()
            }
            (None, None) => Vec::new(),
        };
        HttpRequest {
            method: self.method.clone(),
            path: self.path.clone(),
            query: self
                .query
                .iter()
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect(),
            headers,
            body,
        }
    }
}

/// What an event's execution must end with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Expectation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Whether the execution must succeed or fail.
    pub status: Option<ExecutionStatus>,
    /// The HTTP status of the execution's response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_status: Option<u16>,
}

/// One implementation of the integration a scenario drives.
#[derive(Debug, Clone)]
pub struct Implementation {
    /// Names the implementation in reports (`declarative`, `code-native`).
    pub name: String,
    /// The compiled integration.
    pub plan: Plan,
    /// Scenario route → flow key; routes not listed are flow keys themselves.
    pub routes: BTreeMap<String, String>,
}

impl Implementation {
    /// An implementation named `name` running `plan`, with no routes.
    pub fn new(name: impl Into<String>, plan: Plan) -> Self {
        Implementation {
            name: name.into(),
            plan,
            routes: BTreeMap::new(),
        }
    }

    /// Sends `route` to the flow `flow`.
    pub fn route(mut self, route: impl Into<String>, flow: impl Into<String>) -> Self {
        self.routes.insert(route.into(), flow.into());
        self
    }

    fn flow_for<'r>(&'r self, route: &'r str) -> &'r str {
        self.routes.get(route).map_or(route, String::as_str)
    }

    /// Delivers one request to the flow behind `route` and waits for the execution:
    /// its record when it succeeded, else a one-line reason naming the failing step.
    /// This is the shape a scenario driver needs (for example a `SyncDriver` of the
    /// fake GitHub and Zendesk services: one call per delivered webhook).
    pub async fn deliver(
        &self,
        engine: &FlowEngine,
        route: &str,
        request: HttpRequest,
        env: &RunEnv,
    ) -> Result<ExecutionRecord, String> {
        let flow = self.flow_for(route);
        let record = engine
            .run(&self.plan, flow, request, env)
            .await
            .map_err(|err| format!("{}: {err}", self.name))?;
        if record.succeeded() {
            return Ok(record);
        }
        Err(format!(
            "{}: flow `{flow}` failed at step `{}`: {}",
            self.name,
            record.failed_step.as_deref().unwrap_or("?"),
            record
                .error
                .as_ref()
                .map_or_else(|| "unknown error".to_string(), ToString::to_string)
        ))
    }
}

/// Why a scenario could not be read or run.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("invalid scenario: {0}")]
    /// The scenario file could not be read or is malformed.
    Parse(String),
    #[error("{implementation}: event `{event}`: {source}")]
    /// An event's execution could not start.
    Run {
        /// The implementation being run.
        implementation: String,
        /// The label of the event.
        event: String,
        /// Why the execution could not start.
        source: RunError,
    },
}

/// What the caller of one event observed.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// The event's label.
    pub label: String,
    /// Whether the execution succeeded.
    pub status: ExecutionStatus,
    /// The response status and its inline body, if the execution had a response.
    pub response: Option<(u16, Option<Value>)>,
}

/// The records of one scenario run, and the expectations that did not hold.
#[derive(Debug, Clone)]
pub struct ScenarioRun {
    /// Name of the implementation run.
    pub implementation: String,
    /// Event label and its execution's record, in order.
    pub records: Vec<(String, ExecutionRecord)>,
    /// The expectations that did not hold, one message each.
    pub mismatches: Vec<String>,
}

impl ScenarioRun {
    /// `Err` listing every expectation that did not hold.
    pub fn check(&self) -> Result<(), String> {
        if self.mismatches.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{}: {}",
                self.implementation,
                self.mismatches.join("; ")
            ))
        }
    }

    /// What a caller of each event observed, for comparing implementations.
    pub fn observed(&self) -> Vec<Observation> {
        self.records
            .iter()
            .map(|(label, record)| {
                let response = record.response.as_ref().map(|response| {
                    let body = match &response.body {
                        Some(super::record::RecordedValue::Inline(value)) => {
                            Some(value.as_ref().clone())
                        }
                        _ => None,
                    };
                    (response.status, body)
                });
                Observation {
                    label: label.clone(),
                    status: record.status,
                    response,
                }
            })
            .collect()
    }
}

impl Scenario {
    /// Reads a scenario from `text` in `format`.
    pub fn parse(text: &str, format: Format) -> Result<Scenario, ScenarioError> {
        let value: Value = match format {
            Format::Json => {
                serde_json::from_str(text).map_err(|err| ScenarioError::Parse(err.to_string()))?
            }
            Format::Yaml => super::definition::yaml_value(text)
                .map_err(|err| ScenarioError::Parse(err.without_snippet().to_string()))?,
        };
        serde_path_to_error::deserialize(value)
            .map_err(|err| ScenarioError::Parse(format!("{}: {}", err.path(), err.inner())))
    }

    /// Reads a scenario file: JSON for `.json`, YAML otherwise.
    pub fn from_path(path: &std::path::Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|err| {
            ScenarioError::Parse(format!("cannot read {}: {err}", path.display()))
        })?;
        Self::parse(&text, Format::of_path(path))
    }

    /// Reads a scenario from YAML text.
    pub fn from_yaml(text: &str) -> Result<Scenario, ScenarioError> {
        Self::parse(text, Format::Yaml)
    }

    /// Runs the events in order against `target`, with `env` (its state store is what
    /// persists between events). `prepare` may edit each request before it is sent
    /// (for example to sign it). Execution ids are `<scenario>-<n>`.
    pub async fn run(
        &self,
        engine: &FlowEngine,
        target: &Implementation,
        env: &RunEnv,
        prepare: &mut (dyn FnMut(&ScenarioEvent, &mut HttpRequest) + Send),
    ) -> Result<ScenarioRun, ScenarioError> {
        let mut env = env.clone();
        if !self.config.is_empty() {
            env.capabilities.config = Arc::new(LayeredConfig {
                top: self
                    .config
                    .iter()
                    .fold(StaticConfig::new(), |config, (key, value)| {
                        config.with_json(key.clone(), value.clone())
                    }),
                base: Arc::clone(&env.capabilities.config),
            });
        }
        let mut run = ScenarioRun {
            implementation: target.name.clone(),
            records: Vec::with_capacity(self.events.len()),
            mismatches: Vec::new(),
        };
        for (index, event) in self.events.iter().enumerate() {
            let mut request = event.request.to_http();
            prepare(event, &mut request);
            let mut event_env = env.clone();
            event_env.context.execution_id = format!("{}-{}", self.name, index + 1);
            let record = engine
                .run(
                    &target.plan,
                    target.flow_for(&event.flow),
                    request,
                    &event_env,
                )
                .await
                .map_err(|source| ScenarioError::Run {
                    implementation: target.name.clone(),
                    event: event.label.clone(),
                    source,
                })?;
            if let Some(expect) = &event.expect {
                if let Some(status) = expect.status
                    && record.status != status
                {
                    run.mismatches.push(format!(
                        "event `{}`: expected {status:?}, got {:?} ({})",
                        event.label,
                        record.status,
                        record
                            .error
                            .as_ref()
                            .map_or_else(String::new, |error| format!(
                                "step `{}`: {error}",
                                record.failed_step.as_deref().unwrap_or("?")
                            ))
                    ));
                }
                if let Some(status) = expect.response_status {
                    let got = record.response.as_ref().map(|response| response.status);
                    if got != Some(status) {
                        run.mismatches.push(format!(
                            "event `{}`: expected response status {status}, got {got:?}",
                            event.label
                        ));
                    }
                }
            }
            run.records.push((event.label.clone(), record));
        }
        Ok(run)
    }
}

/// Config of a scenario over the environment's.
struct LayeredConfig {
    top: StaticConfig,
    base: Arc<dyn ConfigSource>,
}

impl ConfigSource for LayeredConfig {
    fn get(&self, key: &str) -> Option<String> {
        self.top.get(key).or_else(|| self.base.get(key))
    }

    fn all(&self) -> Vec<(String, String)> {
        let mut all: BTreeMap<String, String> = self.base.all().into_iter().collect();
        all.extend(self.top.all());
        all.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenarios_parse_and_build_requests() {
        let scenario = Scenario::from_yaml(
            r#"
name: demo
config: {Region: eu}
events:
  - label: opened
    flow: github
    request:
      headers: {X-GitHub-Event: issues}
      body: {action: opened}
    expect: {status: succeeded, responseStatus: 200}
  - label: raw
    flow: zendesk
    request: {method: PUT, rawBody: "a=b", query: {x: "1"}}
"#,
        )
        .unwrap();
        assert_eq!(scenario.events.len(), 2);
        let request = scenario.events[0].request.to_http();
        assert_eq!(request.method, "POST");
        assert!(
            request
                .headers
                .contains(&("x-github-event".into(), "issues".into()))
        );
        assert!(
            request
                .headers
                .contains(&("content-type".into(), "application/json".into()))
        );
        assert_eq!(request.body, br#"{"action":"opened"}"#);
        let raw = scenario.events[1].request.to_http();
        assert_eq!(
            (raw.method.as_str(), raw.body.as_slice()),
            ("PUT", &b"a=b"[..])
        );
        assert!(Scenario::from_yaml("name: x\nevents: [{label: a}]").is_err());
    }
}

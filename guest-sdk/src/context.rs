//! [`Context`]: what a handler knows and may touch: the execution's identity, the four
//! state scopes ([`State`]), the instance's connections ([`Connection`]) and config
//! variables. One type for connectors and flows; every host error maps to [`Error`].

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::bindings::flow::sluice::flow::types::ExecutionContext;
use crate::bindings::flow::sluice::flow::{config, connections, state};
use crate::error::Error;
use crate::output::to_json_text;

/// The context of one call: who and what the execution is, and access to state,
/// connections and config. Handlers receive it as their first argument.
#[derive(Debug, Clone)]
pub struct Context {
    raw: ExecutionContext,
}

impl Context {
    /// Wraps the WIT execution context the host passed to an export.
    #[doc(hidden)]
    pub fn from_raw(raw: ExecutionContext) -> Self {
        Self { raw }
    }

    /// The WIT record this context wraps.
    pub fn raw(&self) -> &ExecutionContext {
        &self.raw
    }

    /// Id of the execution (the same across its steps and retries).
    pub fn execution_id(&self) -> &str {
        &self.raw.execution_id
    }

    /// Id of the tenant (the SaaS vendor) the instance belongs to.
    pub fn tenant_id(&self) -> &str {
        &self.raw.tenant_id
    }

    /// Id of the vendor's customer the instance is deployed for, when there is one.
    pub fn customer_id(&self) -> Option<&str> {
        self.raw.customer_id.as_deref()
    }

    /// The customer's id in the vendor's own system, when known.
    pub fn customer_external_id(&self) -> Option<&str> {
        self.raw.customer_external_id.as_deref()
    }

    /// Id of the deployed instance.
    pub fn instance_id(&self) -> &str {
        &self.raw.instance_id
    }

    /// Id of the integration the instance deploys.
    pub fn integration_id(&self) -> &str {
        &self.raw.integration_id
    }

    /// Name of the flow being executed.
    pub fn flow_name(&self) -> &str {
        &self.raw.flow_name
    }

    /// Key of the step being executed, when the call is a step of a flow.
    pub fn step(&self) -> Option<&str> {
        self.raw.step.as_deref()
    }

    /// 1 for the first attempt, 2 for the first retry, and so on.
    pub fn attempt(&self) -> u32 {
        self.raw.attempt
    }

    /// When the execution started, in milliseconds since the Unix epoch.
    pub fn started_at_ms(&self) -> u64 {
        self.raw.started_at_ms
    }

    /// Webhook URL of the instance's flow named `flow_name`; pass
    /// [`flow_name()`](Self::flow_name) for the current flow's own URL (what an
    /// `on_deploy` hook registers with the remote service).
    pub fn webhook_url(&self, flow_name: &str) -> Option<&str> {
        self.raw
            .webhook_urls
            .iter()
            .find(|(name, _)| name == flow_name)
            .map(|(_, url)| url.as_str())
    }

    /// The current flow's own webhook URL (what an `on_deploy` hook registers with the
    /// remote service); a fatal error naming the flow when the host gave none.
    pub fn own_webhook_url(&self) -> Result<&str, Error> {
        self.webhook_url(self.flow_name())
            .ok_or_else(|| Error::fatal(format!("no webhook URL for flow `{}`", self.flow_name())))
    }

    /// Webhook URL of every flow of the instance, as `(flow name, url)` pairs.
    pub fn webhook_urls(&self) -> &[(String, String)] {
        &self.raw.webhook_urls
    }

    /// The state store of `scope`.
    pub fn state(&self, scope: Scope) -> State {
        State { scope }
    }

    /// State of this flow of this instance, across executions.
    pub fn flow_state(&self) -> State {
        self.state(Scope::Flow)
    }

    /// State shared by all flows of this instance (what instance hooks should use).
    pub fn instance_state(&self) -> State {
        self.state(Scope::Instance)
    }

    /// State shared by all instances of the integration, across customers.
    pub fn integration_state(&self) -> State {
        self.state(Scope::Integration)
    }

    /// State of this execution only: an accumulator across its steps.
    pub fn execution_state(&self) -> State {
        self.state(Scope::Execution)
    }

    /// The connection configured under the config-variable key `key`. A missing or
    /// expired connection is an [`Error::Connection`] naming `key`, so returning it
    /// with `?` lets the host flag the right credential.
    pub fn connection(&self, key: &str) -> Result<Connection, Error> {
        let raw = connections::get(key).map_err(|e| match e {
            connections::ConnectionError::NotFound(m)
            | connections::ConnectionError::Expired(m) => Error::connection(key, m),
            connections::ConnectionError::Unavailable(m) => {
                Error::retryable(format!("connection `{key}` unavailable: {m}"))
            }
        })?;
        Connection::from_raw(raw)
    }

    /// The config variable `key` as `T`, or `None` when the instance does not set it.
    /// A value of the wrong shape is [`Error::InvalidInput`]: the instance is
    /// misconfigured, and retrying cannot help.
    pub fn config<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        config::get(key)
            .map(|text| parse_config(key, &text))
            .transpose()
    }

    /// The config variable `key` as `T`; an unset variable is [`Error::InvalidInput`].
    pub fn require_config<T: DeserializeOwned>(&self, key: &str) -> Result<T, Error> {
        self.config(key)?.ok_or_else(|| {
            Error::invalid_input(format!(
                "config variable `{key}` is not set on this instance"
            ))
        })
    }

    /// The config variable `key` as a string, or `None` when it is not set.
    pub fn config_str(&self, key: &str) -> Result<Option<String>, Error> {
        self.config::<String>(key)
    }

    /// Every config variable of the instance, by key.
    pub fn config_all(&self) -> Result<Map<String, Value>, Error> {
        config::all()
            .into_iter()
            .map(|(key, text)| parse_config::<Value>(&key, &text).map(|value| (key, value)))
            .collect()
    }
}

fn parse_config<T: DeserializeOwned>(key: &str, text: &str) -> Result<T, Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        Error::invalid_input(format!(
            "config variable `{key}` does not have the expected shape{}: {}",
            path_suffix(&e.path().to_string()),
            e.inner()
        ))
    })
}

fn path_suffix(path: &str) -> String {
    if path == "." {
        String::new()
    } else {
        format!(" at `{path}`")
    }
}

/// The four state scopes. Values are JSON documents; keys and values are
/// size-limited by the host (1 KiB and 1 MiB by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// This execution only.
    Execution,
    /// One flow of one instance, across executions.
    Flow,
    /// All flows of one instance.
    Instance,
    /// All instances of the same integration, across customers.
    Integration,
}

impl Scope {
    fn name(self) -> &'static str {
        match self {
            Scope::Execution => "execution",
            Scope::Flow => "flow",
            Scope::Instance => "instance",
            Scope::Integration => "integration",
        }
    }
}

impl From<Scope> for state::Scope {
    fn from(scope: Scope) -> Self {
        match scope {
            Scope::Execution => state::Scope::Execution,
            Scope::Flow => state::Scope::Flow,
            Scope::Instance => state::Scope::Instance,
            Scope::Integration => state::Scope::Integration,
        }
    }
}

/// Typed access to one state scope: `ctx.flow_state().get::<u64>("count")`.
///
/// Errors: a value or key over the host's size limit is [`Error::Fatal`] (the same
/// call would fail again), an unreachable store is [`Error::Retryable`], and a stored
/// value that does not deserialize as `T` is [`Error::Fatal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct State {
    scope: Scope,
}

impl State {
    /// The scope this store addresses.
    pub fn scope(&self) -> Scope {
        self.scope
    }

    /// The value of `key`, or `None` when it is not set.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        self.get_raw(key)?
            .map(|text| self.parse(key, &text))
            .transpose()
    }

    /// The value of `key`, or `T::default()` when it is not set.
    pub fn get_or_default<T: DeserializeOwned + Default>(&self, key: &str) -> Result<T, Error> {
        Ok(self.get(key)?.unwrap_or_default())
    }

    /// The stored JSON text of `key` (canonical: keys sorted, no whitespace).
    pub fn get_raw(&self, key: &str) -> Result<Option<String>, Error> {
        state::get(self.scope.into(), key).map_err(|e| self.error(key, e))
    }

    /// Stores `value` under `key`, replacing any previous value.
    pub fn set<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<(), Error> {
        let text = to_json_text(value)?;
        state::set(self.scope.into(), key, &text).map_err(|e| self.error(key, e))
    }

    /// Deletes `key`; returns whether it existed.
    pub fn delete(&self, key: &str) -> Result<bool, Error> {
        state::delete(self.scope.into(), key).map_err(|e| self.error(key, e))
    }

    /// Atomically replaces the value of `key` with `new` when the current value equals
    /// `expected` (as JSON; `None`: the key must be absent). `new` of `None` deletes
    /// the key. Returns whether the swap happened.
    pub fn compare_and_swap<T: Serialize + ?Sized>(
        &self,
        key: &str,
        expected: Option<&T>,
        new: Option<&T>,
    ) -> Result<bool, Error> {
        let expected = expected.map(to_json_text).transpose()?;
        let new = new.map(to_json_text).transpose()?;
        self.compare_and_swap_raw(key, expected.as_deref(), new.as_deref())
    }

    /// [`compare_and_swap`](Self::compare_and_swap) on JSON text.
    pub fn compare_and_swap_raw(
        &self,
        key: &str,
        expected: Option<&str>,
        new: Option<&str>,
    ) -> Result<bool, Error> {
        state::compare_and_swap(self.scope.into(), key, expected, new)
            .map_err(|e| self.error(key, e))
    }

    /// Read-modify-write of `key` that is safe against concurrent executions: reads
    /// the value, computes `f(current)` (`None` from `f` deletes the key), and swaps it
    /// in only if nobody changed the key meanwhile, retrying up to 16 times. Returns
    /// the value written. Persistent contention is [`Error::Retryable`].
    ///
    /// ```no_run
    /// # fn f(ctx: &sluice_sdk::Context) -> Result<(), sluice_sdk::Error> {
    /// let count = ctx.flow_state().update("count", |n: Option<u64>| Some(n.unwrap_or(0) + 1))?;
    /// # Ok(()) }
    /// ```
    pub fn update<T, F>(&self, key: &str, mut f: F) -> Result<Option<T>, Error>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(Option<T>) -> Option<T>,
    {
        const ATTEMPTS: usize = 16;
        for _ in 0..ATTEMPTS {
            // The swap compares against the stored text itself, not a re-serialization
            // of `T`, so fields `T` does not model cannot make it fail forever.
            let current_text = self.get_raw(key)?;
            let current = current_text
                .as_deref()
                .map(|text| self.parse::<T>(key, text))
                .transpose()?;
            let next = f(current);
            let next_text = next.as_ref().map(to_json_text).transpose()?;
            if self.compare_and_swap_raw(key, current_text.as_deref(), next_text.as_deref())? {
                return Ok(next);
            }
        }
        Err(Error::retryable(format!(
            "state key `{key}` ({} scope) kept changing during {ATTEMPTS} update attempts",
            self.scope.name()
        )))
    }

    fn parse<T: DeserializeOwned>(&self, key: &str, text: &str) -> Result<T, Error> {
        let mut de = serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(&mut de).map_err(|e| {
            Error::fatal(format!(
                "state key `{key}` ({} scope) does not have the expected shape{}: {}",
                self.scope.name(),
                path_suffix(&e.path().to_string()),
                e.inner()
            ))
        })
    }

    fn error(&self, key: &str, e: state::StateError) -> Error {
        let scope = self.scope.name();
        match e {
            state::StateError::TooLarge(m) => {
                Error::fatal(format!("state key `{key}` ({scope} scope) too large: {m}"))
            }
            state::StateError::InvalidJson(m) => Error::fatal(format!(
                "state key `{key}` ({scope} scope) refused as invalid JSON: {m}"
            )),
            state::StateError::Unavailable(m) => {
                Error::retryable(format!("state store unavailable ({scope} scope): {m}"))
            }
            // Retrying does not free room: only deleting keys does.
            state::StateError::QuotaExceeded(m) => Error::fatal(format!(
                "state key `{key}` ({scope} scope) refused: quota exceeded: {m}"
            )),
        }
    }
}

/// An OAuth token the host obtained (and refreshes) for a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthToken {
    /// The access token.
    pub access_token: String,
    /// Its type (usually `Bearer`).
    pub token_type: String,
    /// Expiry in milliseconds since the Unix epoch, when known.
    pub expires_at_ms: Option<u64>,
    /// The scopes it was granted.
    pub scopes: Vec<String>,
}

/// A connection (credential) of the instance: its declared kind, its input fields
/// and, for OAuth kinds, a token. Problems reading it are [`Error::Connection`]
/// errors naming its key.
#[derive(Debug, Clone, PartialEq)]
pub struct Connection {
    key: String,
    kind: String,
    fields: Map<String, Value>,
    token: Option<OAuthToken>,
}

impl Connection {
    fn from_raw(raw: connections::Connection) -> Result<Self, Error> {
        let fields = match serde_json::from_str::<Value>(&raw.fields) {
            Ok(Value::Object(map)) => map,
            Ok(Value::Null) => Map::new(),
            Ok(_) => {
                return Err(Error::connection(
                    &raw.key,
                    "connection fields are not a JSON object",
                ));
            }
            Err(e) => {
                return Err(Error::fatal(format!(
                    "fields of connection `{}` from the host are not JSON: {e}",
                    raw.key
                )));
            }
        };
        Ok(Self {
            key: raw.key,
            kind: raw.kind,
            fields,
            token: raw.token.map(|t| OAuthToken {
                access_token: t.access_token,
                token_type: t.token_type,
                expires_at_ms: t.expires_at_ms,
                scopes: t.scopes,
            }),
        })
    }

    /// Builds a connection by hand (for native unit tests of code that takes one).
    pub fn new(
        key: impl Into<String>,
        kind: impl Into<String>,
        fields: Map<String, Value>,
        token: Option<OAuthToken>,
    ) -> Self {
        Self {
            key: key.into(),
            kind: kind.into(),
            fields,
            token,
        }
    }

    /// The config-variable key of the connection.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The connection type, as declared in the manifest (`ConnectionType::new(_, kind)`).
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// Every input field, as JSON.
    pub fn fields(&self) -> &Map<String, Value> {
        &self.fields
    }

    /// The input field `name` as `T`; a missing or mistyped field is a connection error.
    pub fn field<T: DeserializeOwned>(&self, name: &str) -> Result<T, Error> {
        let value = self.fields.get(name).ok_or_else(|| {
            Error::connection(&self.key, format!("connection has no field `{name}`"))
        })?;
        T::deserialize(value).map_err(|e| {
            Error::connection(
                &self.key,
                format!("connection field `{name}` is invalid: {e}"),
            )
        })
    }

    /// The input field `name` as a string.
    pub fn field_str(&self, name: &str) -> Result<&str, Error> {
        match self.fields.get(name) {
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(Error::connection(
                &self.key,
                format!("connection field `{name}` is not a string"),
            )),
            None => Err(Error::connection(
                &self.key,
                format!("connection has no field `{name}`"),
            )),
        }
    }

    /// All input fields deserialized as one struct (typically the same type the
    /// connection declares with [`ConnectionType::inputs`](crate::ConnectionType::inputs)).
    pub fn fields_as<T: DeserializeOwned>(&self) -> Result<T, Error> {
        T::deserialize(Value::Object(self.fields.clone())).map_err(|e| {
            Error::connection(&self.key, format!("connection fields are invalid: {e}"))
        })
    }

    /// The OAuth token, for OAuth connection kinds.
    pub fn token(&self) -> Option<&OAuthToken> {
        self.token.as_ref()
    }

    /// The OAuth access token, for an `Authorization: Bearer` header. A connection
    /// without a token is a connection error.
    pub fn bearer_token(&self) -> Result<&str, Error> {
        self.token
            .as_ref()
            .map(|t| t.access_token.as_str())
            .ok_or_else(|| {
                Error::connection(
                    &self.key,
                    format!("connection of kind `{}` has no OAuth token", self.kind),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn conn(fields: Value, token: Option<OAuthToken>) -> Connection {
        let Value::Object(map) = fields else {
            panic!("fields must be an object")
        };
        Connection::new("gh", "api-key", map, token)
    }

    #[test]
    fn connection_fields_and_tokens() {
        let c = conn(json!({"apiKey": "k", "port": 443}), None);
        assert_eq!(c.field_str("apiKey").unwrap(), "k");
        assert_eq!(c.field::<u16>("port").unwrap(), 443);
        assert_eq!(
            c.field_str("missing").unwrap_err(),
            Error::connection("gh", "connection has no field `missing`")
        );
        assert_eq!(c.field_str("port").unwrap_err().kind(), "connection");
        assert_eq!(c.field::<String>("port").unwrap_err().kind(), "connection");
        assert_eq!(c.bearer_token().unwrap_err().kind(), "connection");

        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Fields {
            api_key: String,
        }
        assert_eq!(c.fields_as::<Fields>().unwrap().api_key, "k");

        let token = OAuthToken {
            access_token: "t".into(),
            token_type: "bearer".into(),
            expires_at_ms: None,
            scopes: vec![],
        };
        assert_eq!(conn(json!({}), Some(token)).bearer_token().unwrap(), "t");
    }

    #[test]
    fn config_values_are_parsed_with_paths() {
        assert_eq!(parse_config::<String>("k", r#""v""#).unwrap(), "v");
        let err = parse_config::<Vec<u8>>("k", r#"[1,"x"]"#).unwrap_err();
        assert_eq!(err.kind(), "invalid-input");
        assert!(err.message().contains("at `[1]`"), "{err}");
    }

    #[test]
    fn state_errors_map_to_kinds() {
        let s = State { scope: Scope::Flow };
        assert_eq!(
            s.error("k", state::StateError::TooLarge("1 MiB".into()))
                .kind(),
            "fatal"
        );
        assert_eq!(
            s.error("k", state::StateError::Unavailable("down".into()))
                .kind(),
            "retryable"
        );
        assert_eq!(
            s.error("k", state::StateError::QuotaExceeded("64 MiB".into()))
                .kind(),
            "fatal"
        );
        assert_eq!(s.parse::<u64>("k", r#""x""#).unwrap_err().kind(), "fatal");
    }
}

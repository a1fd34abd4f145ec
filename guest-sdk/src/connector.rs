//! Declaring a connector: [`Component`] with its [`Action`]s, [`Trigger`]s,
//! [`DataSource`]s and [`ConnectionType`]s. From one declaration the SDK produces the
//! manifest (docs/manifest.md) and dispatches every `connector` export by key.

use std::collections::HashSet;

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::bindings::flow::sluice::flow::types as wit;
use crate::context::Context;
use crate::error::{Error, parse_input};
use crate::oauth2::OAuth2;
use crate::output::{IntoOutput, Output, to_json_text};
use crate::schema::input_schema;
use crate::trigger::{Request, TriggerResponse};

type SchemaFn = fn() -> Value;
type ActionFn = Box<dyn Fn(&mut Context, &str) -> Result<Output, Error>>;
type TriggerFn = Box<dyn Fn(&mut Context, &Request, &str) -> Result<TriggerResponse, Error>>;
type DataSourceFn = Box<dyn Fn(&mut Context, &str) -> Result<String, Error>>;
type HookFn = Box<dyn Fn(&mut Context, &str) -> Result<(), Error>>;

/// Label and description, as every manifest entry shows them.
#[derive(Debug, Clone, Default)]
struct Display {
    label: Option<String>,
    description: String,
}

impl Display {
    fn to_json(&self, key: &str) -> Value {
        json!({
            "label": self.label.as_deref().unwrap_or(key),
            "description": self.description,
        })
    }
}

/// A connector: the one registration point of a component crate. Build it in a
/// function and hand that function to [`export_component!`](crate::export_component!):
///
/// ```no_run
/// use sluice_sdk::prelude::*;
///
/// #[derive(Deserialize, JsonSchema)]
/// struct Greet {
///     /// Who to greet
///     name: String,
/// }
///
/// fn greet(_ctx: &mut Context, input: Greet) -> Result<Value, Error> {
///     Ok(json!({ "greeting": format!("Hello, {}!", input.name) }))
/// }
///
/// fn component() -> Component {
///     Component::new("acme", "0.1.0")
///         .label("Acme")
///         .description("Talks to Acme's API")
///         .action(Action::new("greet", greet).label("Greet"))
/// }
///
/// sluice_sdk::export_component!(component);
/// ```
pub struct Component {
    key: String,
    version: String,
    display: Display,
    icon_path: Option<String>,
    actions: Vec<Action>,
    triggers: Vec<Trigger>,
    data_sources: Vec<DataSource>,
    connections: Vec<ConnectionType>,
}

impl Component {
    /// A component with programmatic `key` (letters, digits, `-`, `_`) and the
    /// author's `version` string.
    pub fn new(key: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            version: version.into(),
            display: Display::default(),
            icon_path: None,
            actions: Vec::new(),
            triggers: Vec::new(),
            data_sources: Vec::new(),
            connections: Vec::new(),
        }
    }

    /// Display name (default: the key).
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.display.label = Some(label.into());
        self
    }

    /// One-line description.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.display.description = description.into();
        self
    }

    /// Path of the icon within the component's assets (`icon.png`).
    pub fn icon_path(mut self, path: impl Into<String>) -> Self {
        self.icon_path = Some(path.into());
        self
    }

    /// Adds an action.
    pub fn action(mut self, action: Action) -> Self {
        self.actions.push(action);
        self
    }

    /// Adds a webhook trigger.
    pub fn trigger(mut self, trigger: Trigger) -> Self {
        self.triggers.push(trigger);
        self
    }

    /// Adds a data source.
    pub fn data_source(mut self, data_source: DataSource) -> Self {
        self.data_sources.push(data_source);
        self
    }

    /// Adds an accepted connection type; the first one added is the default.
    pub fn connection(mut self, connection: ConnectionType) -> Self {
        self.connections.push(connection);
        self
    }

    /// The component's key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The manifest, as docs/manifest.md describes it.
    pub fn manifest(&self) -> Value {
        let mut display = self.display.to_json(&self.key);
        if let (Some(path), Value::Object(map)) = (&self.icon_path, &mut display) {
            map.insert("iconPath".into(), Value::String(path.clone()));
        }
        let actions: Map<String, Value> = self
            .actions
            .iter()
            .map(|a| (a.key.clone(), a.manifest()))
            .collect();
        let triggers: Map<String, Value> = self
            .triggers
            .iter()
            .map(|t| (t.key.clone(), t.manifest()))
            .collect();
        let data_sources: Map<String, Value> = self
            .data_sources
            .iter()
            .map(|d| (d.key.clone(), d.manifest()))
            .collect();
        let connections: Vec<Value> = self
            .connections
            .iter()
            .map(ConnectionType::manifest)
            .collect();
        json!({
            "key": self.key,
            "version": self.version,
            "display": display,
            "actions": actions,
            "triggers": triggers,
            "dataSources": data_sources,
            "connections": connections,
        })
    }

    /// Checks the declaration: key syntax, no duplicate keys, object input schemas,
    /// declared branch names. Returns every problem found; call it from a unit test.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        if !is_valid_key(&self.key) {
            problems.push(format!(
                "component key `{}` must be letters, digits, `-` and `_`, starting and ending with a letter or digit",
                self.key
            ));
        }
        if self.version.trim().is_empty() {
            problems.push("component version is empty".to_string());
        }
        let mut check = |what: &str, keys: Vec<(&str, Value)>| {
            let mut seen = HashSet::new();
            for (key, inputs) in keys {
                if key.is_empty() {
                    problems.push(format!("{what} with an empty key"));
                }
                if !seen.insert(key) {
                    problems.push(format!("{what} `{key}` is declared twice"));
                }
                if inputs.get("type").and_then(Value::as_str) != Some("object") {
                    problems.push(format!(
                        "inputs of {what} `{key}` must be an object (a struct), not {inputs}"
                    ));
                }
            }
        };
        check(
            "action",
            self.actions
                .iter()
                .map(|a| (a.key.as_str(), (a.inputs)()))
                .collect(),
        );
        check(
            "trigger",
            self.triggers
                .iter()
                .map(|t| (t.key.as_str(), (t.inputs)()))
                .collect(),
        );
        check(
            "data source",
            self.data_sources
                .iter()
                .map(|d| (d.key.as_str(), (d.inputs)()))
                .collect(),
        );
        check(
            "connection",
            self.connections
                .iter()
                .map(|c| (c.key.as_str(), (c.inputs)()))
                .collect(),
        );
        for (what, key, branches) in self
            .actions
            .iter()
            .map(|a| ("action", &a.key, &a.branches))
            .chain(
                self.triggers
                    .iter()
                    .map(|t| ("trigger", &t.key, &t.branches)),
            )
        {
            if let Some(names) = branches {
                let unique: HashSet<&String> = names.iter().collect();
                if unique.len() != names.len() || names.iter().any(String::is_empty) {
                    problems.push(format!(
                        "branch names of {what} `{key}` must be non-empty and distinct"
                    ));
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    #[doc(hidden)]
    pub fn run_action(&self, ctx: &mut Context, key: &str, input: &str) -> Result<Output, Error> {
        let action = find(&self.actions, |a| &a.key, key, "action")?;
        (action.run)(ctx, input)
    }

    #[doc(hidden)]
    pub fn run_trigger(
        &self,
        ctx: &mut Context,
        key: &str,
        request: &Request,
        inputs: &str,
    ) -> Result<TriggerResponse, Error> {
        let trigger = find(&self.triggers, |t| &t.key, key, "trigger")?;
        (trigger.run)(ctx, request, inputs)
    }

    #[doc(hidden)]
    pub fn run_data_source(
        &self,
        ctx: &mut Context,
        key: &str,
        input: &str,
    ) -> Result<String, Error> {
        let data_source = find(&self.data_sources, |d| &d.key, key, "data source")?;
        (data_source.run)(ctx, input)
    }

    /// Runs the trigger's deploy (`deploy`) or remove hook; a trigger without one
    /// succeeds without doing anything, as its manifest's `hasInstanceHooks` says.
    #[doc(hidden)]
    pub fn run_hook(
        &self,
        ctx: &mut Context,
        key: &str,
        inputs: &str,
        deploy: bool,
    ) -> Result<(), Error> {
        let trigger = find(&self.triggers, |t| &t.key, key, "trigger")?;
        let hook = if deploy {
            &trigger.on_deploy
        } else {
            &trigger.on_remove
        };
        match hook {
            Some(hook) => hook(ctx, inputs),
            None => Ok(()),
        }
    }
}

/// The entry of `items` whose key is `key`, or an invalid-input error listing the
/// known keys (the caller named something this component does not have).
fn find<'a, T>(
    items: &'a [T],
    key_of: impl Fn(&T) -> &String,
    key: &str,
    what: &str,
) -> Result<&'a T, Error> {
    items
        .iter()
        .find(|item| key_of(item) == key)
        .ok_or_else(|| {
            let known: Vec<String> = items.iter().map(|i| format!("`{}`", key_of(i))).collect();
            let known = if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            };
            Error::invalid_input(format!("unknown {what} `{key}` (known: {known})"))
        })
}

fn is_valid_key(key: &str) -> bool {
    let bytes = key.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
        }
        _ => false,
    }
}

fn branches_json(map: &mut Map<String, Value>, branches: Option<&Vec<String>>) {
    map.insert("allowsBranching".into(), Value::Bool(branches.is_some()));
    map.insert(
        "staticBranchNames".into(),
        Value::Array(
            branches
                .map(|b| b.iter().cloned().map(Value::String).collect())
                .unwrap_or_default(),
        ),
    );
}

/// An action: a typed handler `fn(&mut Context, Input) -> Result<impl IntoOutput, Error>`.
///
/// The input is deserialized from the call's JSON (a mismatch is
/// [`Error::InvalidInput`] naming the field), and its `JsonSchema` becomes the
/// manifest's `inputs`. The handler returns any `Serialize` value (JSON output) or an
/// [`Output`].
pub struct Action {
    key: String,
    display: Display,
    inputs: SchemaFn,
    branches: Option<Vec<String>>,
    run: ActionFn,
}

impl Action {
    /// An action with programmatic `key`, run by `handler`.
    pub fn new<I, O, F>(key: impl Into<String>, handler: F) -> Self
    where
        I: DeserializeOwned + JsonSchema + 'static,
        O: IntoOutput + 'static,
        F: Fn(&mut Context, I) -> Result<O, Error> + 'static,
    {
        let key = key.into();
        let what = format!("input of action `{key}`");
        Self {
            key,
            display: Display::default(),
            inputs: input_schema::<I>,
            branches: None,
            run: Box::new(move |ctx, input| {
                let input = parse_input::<I>(input, &what)?;
                handler(ctx, input).map(IntoOutput::into_output)
            }),
        }
    }

    /// Display name (default: the key).
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.display.label = Some(label.into());
        self
    }

    /// One-line description.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.display.description = description.into();
        self
    }

    /// Declares that the action branches, and the names of its branches (what
    /// [`Output::branch`] may return).
    pub fn branches<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.branches = Some(names.into_iter().map(Into::into).collect());
        self
    }

    fn manifest(&self) -> Value {
        let mut map = Map::new();
        map.insert("display".into(), self.display.to_json(&self.key));
        map.insert("inputs".into(), (self.inputs)());
        branches_json(&mut map, self.branches.as_ref());
        Value::Object(map)
    }
}

/// Whether a trigger's flow may be invoked synchronously (the caller waits for the
/// flow's result).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SynchronousResponse {
    /// Synchronous invocations are refused.
    Invalid,
    /// Both synchronous and asynchronous invocations are allowed (the default).
    #[default]
    Valid,
    /// Only synchronous invocations are allowed.
    Required,
}

impl SynchronousResponse {
    fn as_str(self) -> &'static str {
        match self {
            Self::Invalid => "invalid",
            Self::Valid => "valid",
            Self::Required => "required",
        }
    }
}

/// A webhook trigger: `fn(&mut Context, &Request, Inputs) -> Result<TriggerResponse, Error>`,
/// with optional instance hooks `fn(&mut Context, Inputs) -> Result<(), Error>` that
/// run when an instance using the trigger is deployed (must be idempotent) or removed.
pub struct Trigger {
    key: String,
    display: Display,
    inputs: SchemaFn,
    branches: Option<Vec<String>>,
    synchronous_response: SynchronousResponse,
    run: TriggerFn,
    on_deploy: Option<HookFn>,
    on_remove: Option<HookFn>,
}

impl Trigger {
    /// A trigger with programmatic `key`, run by `handler` for each request.
    pub fn new<I, F>(key: impl Into<String>, handler: F) -> Self
    where
        I: DeserializeOwned + JsonSchema + 'static,
        F: Fn(&mut Context, &Request, I) -> Result<TriggerResponse, Error> + 'static,
    {
        let key = key.into();
        let what = format!("inputs of trigger `{key}`");
        Self {
            key,
            display: Display::default(),
            inputs: input_schema::<I>,
            branches: None,
            synchronous_response: SynchronousResponse::default(),
            run: Box::new(move |ctx, request, inputs| {
                let inputs = parse_input::<I>(inputs, &what)?;
                handler(ctx, request, inputs)
            }),
            on_deploy: None,
            on_remove: None,
        }
    }

    /// Display name (default: the key).
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.display.label = Some(label.into());
        self
    }

    /// One-line description.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.display.description = description.into();
        self
    }

    /// Declares the trigger's branches (what [`TriggerResponse::branch`] may name).
    pub fn branches<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.branches = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// Whether synchronous invocations are allowed (default [`SynchronousResponse::Valid`]).
    pub fn synchronous_response(mut self, mode: SynchronousResponse) -> Self {
        self.synchronous_response = mode;
        self
    }

    /// Runs when an instance using this trigger is deployed (e.g. registers a webhook
    /// at [`Context::webhook_url`]). May run more than once: make it idempotent.
    pub fn on_deploy<I, F>(mut self, hook: F) -> Self
    where
        I: DeserializeOwned + 'static,
        F: Fn(&mut Context, I) -> Result<(), Error> + 'static,
    {
        self.on_deploy = Some(hook_fn(format!("inputs of trigger `{}`", self.key), hook));
        self
    }

    /// Runs when an instance using this trigger is removed (e.g. deletes the webhook).
    pub fn on_remove<I, F>(mut self, hook: F) -> Self
    where
        I: DeserializeOwned + 'static,
        F: Fn(&mut Context, I) -> Result<(), Error> + 'static,
    {
        self.on_remove = Some(hook_fn(format!("inputs of trigger `{}`", self.key), hook));
        self
    }

    fn manifest(&self) -> Value {
        let mut map = Map::new();
        map.insert("display".into(), self.display.to_json(&self.key));
        map.insert("inputs".into(), (self.inputs)());
        map.insert(
            "synchronousResponse".into(),
            Value::String(self.synchronous_response.as_str().to_string()),
        );
        map.insert(
            "hasInstanceHooks".into(),
            Value::Bool(self.on_deploy.is_some() || self.on_remove.is_some()),
        );
        // Only branching triggers carry the branch fields (docs/manifest.md lists them
        // for actions; triggers branch the same way when they declare branches).
        if self.branches.is_some() {
            branches_json(&mut map, self.branches.as_ref());
        }
        Value::Object(map)
    }
}

fn hook_fn<I, F>(what: String, hook: F) -> HookFn
where
    I: DeserializeOwned + 'static,
    F: Fn(&mut Context, I) -> Result<(), Error> + 'static,
{
    Box::new(move |ctx, inputs| {
        let inputs = parse_input::<I>(inputs, &what)?;
        hook(ctx, inputs)
    })
}

/// What a data source produces, for the config wizard to render.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DataSourceType {
    /// A string.
    String,
    /// A date (`YYYY-MM-DD`).
    Date,
    /// A timestamp (RFC 3339).
    Timestamp,
    /// A list of strings, or of [`PicklistItem`]s (the default).
    #[default]
    Picklist,
    /// A schedule (cron expression and time zone).
    Schedule,
    /// Source code.
    Code,
    /// A boolean.
    Boolean,
    /// A number.
    Number,
    /// A choice of objects of the connected app.
    ObjectSelection,
    /// A mapping of fields between two apps' objects.
    ObjectFieldMap,
    /// A form described by JSON Schema.
    JsonForm,
}

impl DataSourceType {
    /// The manifest's name of the type.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Date => "date",
            Self::Timestamp => "timestamp",
            Self::Picklist => "picklist",
            Self::Schedule => "schedule",
            Self::Code => "code",
            Self::Boolean => "boolean",
            Self::Number => "number",
            Self::ObjectSelection => "objectSelection",
            Self::ObjectFieldMap => "objectFieldMap",
            Self::JsonForm => "jsonForm",
        }
    }
}

/// One entry of a picklist data source's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PicklistItem {
    /// The value the config variable receives.
    pub key: String,
    /// What the config wizard shows.
    pub label: String,
}

impl PicklistItem {
    /// An item with its key and its label for people.
    pub fn new(key: impl Into<String>, label: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            label: label.into(),
        }
    }
}

/// A data source: `fn(&mut Context, Input) -> Result<impl Serialize, Error>`, whose
/// JSON result fills a config variable at deploy time (a picklist, a form).
pub struct DataSource {
    key: String,
    display: Display,
    inputs: SchemaFn,
    kind: DataSourceType,
    run: DataSourceFn,
}

impl DataSource {
    /// A data source with programmatic `key`, run by `handler`; a
    /// [`DataSourceType::Picklist`] unless [`kind`](Self::kind) says otherwise.
    pub fn new<I, T, F>(key: impl Into<String>, handler: F) -> Self
    where
        I: DeserializeOwned + JsonSchema + 'static,
        T: Serialize + 'static,
        F: Fn(&mut Context, I) -> Result<T, Error> + 'static,
    {
        let key = key.into();
        let what = format!("input of data source `{key}`");
        Self {
            key,
            display: Display::default(),
            inputs: input_schema::<I>,
            kind: DataSourceType::default(),
            run: Box::new(move |ctx, input| {
                let input = parse_input::<I>(input, &what)?;
                to_json_text(&handler(ctx, input)?)
            }),
        }
    }

    /// Display name (default: the key).
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.display.label = Some(label.into());
        self
    }

    /// One-line description.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.display.description = description.into();
        self
    }

    /// What the result is.
    pub fn kind(mut self, kind: DataSourceType) -> Self {
        self.kind = kind;
        self
    }

    fn manifest(&self) -> Value {
        json!({
            "display": self.display.to_json(&self.key),
            "inputs": (self.inputs)(),
            "dataSourceType": self.kind.as_str(),
        })
    }
}

/// A connection type the component accepts: a `key`, a `kind` the guest sees as
/// [`Connection::kind`](crate::Connection::kind) (`"api-key"`, `"oauth2"`, ...), and
/// the input fields a customer fills in, declared as a `JsonSchema` struct.
pub struct ConnectionType {
    key: String,
    kind: String,
    display: Display,
    inputs: SchemaFn,
    oauth2: Option<OAuth2>,
}

impl ConnectionType {
    /// A connection type with no input fields (add them with [`inputs`](Self::inputs)).
    pub fn new(key: impl Into<String>, kind: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            kind: kind.into(),
            display: Display::default(),
            inputs: || json!({ "type": "object" }),
            oauth2: None,
        }
    }

    /// Makes the host run OAuth 2.0 for this connection type: it obtains the token,
    /// refreshes it, and hands the guest only the access token (see [`OAuth2`]).
    pub fn oauth2(mut self, oauth2: OAuth2) -> Self {
        self.oauth2 = Some(oauth2);
        self
    }

    /// Display name (default: the key).
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.display.label = Some(label.into());
        self
    }

    /// One-line description.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.display.description = description.into();
        self
    }

    /// The input fields, from `T`'s `JsonSchema`; read them back with
    /// [`Connection::fields_as::<T>()`](crate::Connection::fields_as).
    pub fn inputs<T: JsonSchema>(mut self) -> Self {
        self.inputs = input_schema::<T>;
        self
    }

    fn manifest(&self) -> Value {
        let mut manifest = json!({
            "key": self.key,
            "kind": self.kind,
            "display": self.display.to_json(&self.key),
            "inputs": (self.inputs)(),
        });
        if let Some(oauth2) = &self.oauth2 {
            manifest["oauth2"] = oauth2.manifest();
        }
        manifest
    }
}

/// Glue between the raw `connector` exports and a [`Component`]; what
/// [`export_component!`](crate::export_component!) expands to calls these.
#[doc(hidden)]
pub mod export {
    use super::*;

    pub fn manifest(component: &Component) -> String {
        component.manifest().to_string()
    }

    pub fn run_action(
        component: &Component,
        ctx: wit::ExecutionContext,
        action: &str,
        input: &str,
    ) -> Result<wit::Output, wit::Error> {
        let mut ctx = Context::from_raw(ctx);
        Ok(component
            .run_action(&mut ctx, action, input)
            .and_then(Output::into_wit)?)
    }

    pub fn run_trigger(
        component: &Component,
        ctx: wit::ExecutionContext,
        trigger: &str,
        request: wit::HttpRequest,
        inputs: &str,
    ) -> Result<wit::TriggerOutcome, wit::Error> {
        let mut ctx = Context::from_raw(ctx);
        let request = Request::from(request);
        Ok(component
            .run_trigger(&mut ctx, trigger, &request, inputs)
            .and_then(TriggerResponse::into_wit)?)
    }

    pub fn run_data_source(
        component: &Component,
        ctx: wit::ExecutionContext,
        name: &str,
        input: &str,
    ) -> Result<String, wit::Error> {
        let mut ctx = Context::from_raw(ctx);
        Ok(component.run_data_source(&mut ctx, name, input)?)
    }

    pub fn on_instance_hook(
        component: &Component,
        ctx: wit::ExecutionContext,
        trigger: &str,
        inputs: &str,
        deploy: bool,
    ) -> Result<(), wit::Error> {
        let mut ctx = Context::from_raw(ctx);
        Ok(component.run_hook(&mut ctx, trigger, inputs, deploy)?)
    }
}

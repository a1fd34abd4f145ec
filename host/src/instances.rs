//! Instances: an integration version deployed for a customer with its config,
//! connections (sealed at rest) and allow-list. Deploying runs the deploy hooks of the
//! flows' component triggers, then the flows that run `on: instanceDeploy`; removing
//! runs the remove hooks and `instanceRemove` flows, then drops the instance's state.
//! Also builds the [`RunEnv`] every execution of an instance runs in.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};
use sluice_runtime::flow::{FlowEvent, InstanceHook, RunEnv};
use sluice_runtime::{
    Capabilities, Connection, EgressPolicy, ExecutionContext, Limits, LogSink, OAuthToken,
    StaticConfig,
};

use crate::api::auth::key_hash;
use crate::api::error::ApiError;
use crate::app::AppState;
use crate::capabilities::{HostStateStore, instance_namespace_prefixes};
use crate::execution;
use crate::integrations::{self, CompiledIntegration};
use crate::secrets::random_bytes;
use crate::store::executions::{ExecutionStatus, Payload};
use crate::store::instances::{FlowSettings, Instance, InstanceContext, InstanceStatus};
use crate::store::{new_id, now_ms};

/// A connection as a client sends it (the key is the map key).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectionInput {
    /// The connection type (e.g. `oauth2`, `api-key`).
    pub kind: String,
    /// The connection's fields as a JSON object.
    #[serde(default = "empty_object")]
    pub fields: Value,
    #[serde(default)]
    pub token: Option<TokenInput>,
}

fn empty_object() -> Value {
    json!({})
}

/// An OAuth token as a client sends it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenInput {
    pub access_token: String,
    #[serde(default = "bearer")]
    pub token_type: String,
    /// Expiry, milliseconds since the Unix epoch.
    #[serde(default)]
    pub expires_at_ms: Option<u64>,
    #[serde(default)]
    pub scopes: Vec<String>,
}

fn bearer() -> String {
    "bearer".into()
}

/// Per-flow endpoint settings as a client sends them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FlowSettingsInput {
    /// API keys a caller of the flow's webhook must send in the `api-key` header.
    #[serde(default)]
    pub api_keys: Vec<String>,
    /// Answer the flow's webhooks synchronously by default.
    #[serde(default)]
    pub synchronous: bool,
}

/// What a client may set on an instance (all of it at deploy, any of it later).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InstanceSettings {
    pub name: Option<String>,
    pub enabled: Option<bool>,
    pub config: Option<BTreeMap<String, Value>>,
    pub connections: Option<BTreeMap<String, ConnectionInput>>,
    pub allowed_hosts: Option<Vec<String>>,
    pub flows: Option<BTreeMap<String, FlowSettingsInput>>,
}

/// What a hook or deploy step did, reported to the client.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HookResult {
    pub flow: String,
    pub hook: &'static str,
    /// The outcome's status (`completed`, `guest-error`, `timeout`, ...).
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A new webhook token: 32 random bytes, hex (URL-safe, unguessable).
fn new_token() -> Result<String, ApiError> {
    random_bytes::<32>()
        .map(hex::encode)
        .map_err(ApiError::internal)
}

/// Checks config variables against the integration's declarations: no unknown keys,
/// no connection among them (those go under `connections`), each value of its
/// variable's data type (and one of a static picklist's values), and, unless
/// `partial` (a draft being configured), every variable without a default has a value.
fn check_config(
    config: &BTreeMap<String, Value>,
    compiled: &CompiledIntegration,
    partial: bool,
) -> Result<(), ApiError> {
    use sluice_runtime::flow::ConfigVarType as Type;
    let declared = &compiled.definition.config_vars;
    for (key, value) in config {
        let Some(var) = declared.iter().find(|var| &var.key == key) else {
            let known: Vec<&str> = declared.iter().map(|var| var.key.as_str()).collect();
            return Err(ApiError::invalid(format!(
                "unknown config variable `{key}`; the integration declares: {}",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )));
        };
        let expected = match var.data_type {
            Type::Connection => {
                return Err(ApiError::invalid(format!(
                    "`config.{key}` is a connection: set it under `connections`"
                )));
            }
            Type::String | Type::Date | Type::Timestamp | Type::Code | Type::Picklist
                if !value.is_string() =>
            {
                Some("a string")
            }
            Type::Number if !value.is_number() => Some("a number"),
            Type::Boolean if !value.is_boolean() => Some("true or false"),
            _ => None,
        };
        if let Some(expected) = expected {
            return Err(ApiError::invalid(format!(
                "`config.{key}` must be {expected}, not {value}"
            )));
        }
        if let Some(values) = &var.picklist
            && !values.iter().any(|choice| value.as_str() == Some(choice))
        {
            return Err(ApiError::invalid(format!(
                "`config.{key}`: {value} is not one of {}",
                values.join(", ")
            )));
        }
    }
    if partial {
        return Ok(());
    }
    let missing: Vec<&str> = declared
        .iter()
        .filter(|var| {
            var.data_type != sluice_runtime::flow::ConfigVarType::Connection
                && var.default_value.is_none()
                && !config.contains_key(&var.key)
        })
        .map(|var| var.key.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::invalid(format!(
            "config variables without a default need a value: {}",
            missing.join(", ")
        )));
    }
    Ok(())
}

/// Checks that every connection variable of the integration is set on the instance:
/// fields under `connections`, or an OAuth grant the customer gave (an OAuth one needs
/// its grant or a token; see `oauth::connection_status`). A connection whose grant
/// was refused is reported as such.
async fn check_connections(
    state: &AppState,
    instance: &Instance,
    compiled: &CompiledIntegration,
) -> Result<(), ApiError> {
    let fields = open_connections(state, instance)?;
    let grants = state
        .store
        .oauth_connections_of(&instance.tenant_id, &instance.id)
        .await?;
    for var in &compiled.definition.config_vars {
        if var.data_type != sluice_runtime::flow::ConfigVarType::Connection {
            continue;
        }
        let own = fields.iter().find(|connection| connection.key == var.key);
        let grant = grants.iter().find(|grant| grant.connection_key == var.key);
        match crate::oauth::connection_status(compiled, &var.key, own, grant) {
            crate::oauth::ConnectionStatus::Active => {}
            crate::oauth::ConnectionStatus::Error(detail) => {
                return Err(ApiError::invalid(format!(
                    "connection `{}` must be connected again: {}",
                    var.key,
                    detail.as_deref().unwrap_or("the provider refused it")
                )));
            }
            crate::oauth::ConnectionStatus::Pending => {
                return Err(ApiError::invalid(format!(
                    "connection `{}` is not set: connect it or set it under `connections`",
                    var.key
                )));
            }
        }
    }
    Ok(())
}

fn check_flows(
    flows: &BTreeMap<String, FlowSettingsInput>,
    compiled: &CompiledIntegration,
) -> Result<(), ApiError> {
    for key in flows.keys() {
        if !compiled.plan.has_flow(key) {
            return Err(ApiError::invalid(format!(
                "`flows.{key}`: the integration has no flow `{key}` (its flows: {})",
                compiled.plan.flow_keys().join(", ")
            )));
        }
    }
    Ok(())
}

fn flow_settings(flows: BTreeMap<String, FlowSettingsInput>) -> BTreeMap<String, FlowSettings> {
    flows
        .into_iter()
        .map(|(key, input)| {
            let settings = FlowSettings {
                api_key_hashes: input
                    .api_keys
                    .iter()
                    .map(|api_key| key_hash(api_key))
                    .collect(),
                synchronous: input.synchronous,
            };
            (key, settings)
        })
        .collect()
}

fn seal_connections(
    state: &AppState,
    instance_id: &str,
    connections: &BTreeMap<String, ConnectionInput>,
) -> Result<Vec<u8>, ApiError> {
    let mut list = Vec::with_capacity(connections.len());
    for (key, input) in connections {
        if !input.fields.is_object() {
            return Err(ApiError::invalid(format!(
                "`connections.{key}.fields` must be a JSON object"
            )));
        }
        list.push(Connection {
            key: key.clone(),
            kind: input.kind.clone(),
            fields: input.fields.clone(),
            token: input.token.clone().map(|token| OAuthToken {
                access_token: token.access_token,
                token_type: token.token_type,
                expires_at_ms: token.expires_at_ms,
                scopes: token.scopes,
            }),
        });
    }
    let plaintext = serde_json::to_vec(&list).map_err(ApiError::internal)?;
    state
        .secrets
        .seal(instance_id, &plaintext)
        .map_err(ApiError::internal)
}

/// The instance's connections, decrypted.
pub fn open_connections(
    state: &AppState,
    instance: &Instance,
) -> Result<Vec<Connection>, ApiError> {
    let plaintext = state
        .secrets
        .open(&instance.id, &instance.sealed_connections)
        .map_err(ApiError::internal)?;
    serde_json::from_slice(&plaintext).map_err(ApiError::internal)
}

fn check_hosts(hosts: &[String]) -> Result<EgressPolicy, ApiError> {
    EgressPolicy::parse(hosts).map_err(|err| ApiError::invalid(format!("`allowedHosts`: {err}")))
}

/// Webhook URLs of an instance's flows, by flow key.
pub async fn webhook_urls(
    state: &AppState,
    instance: &Instance,
) -> Result<BTreeMap<String, String>, ApiError> {
    let webhooks = state
        .store
        .webhooks_of(&instance.tenant_id, &instance.id)
        .await?;
    Ok(urls_of(state, webhooks.iter()).collect())
}

/// Webhook URLs from (flow key, token) pairs.
fn urls_of<'a>(
    state: &AppState,
    webhooks: impl Iterator<Item = (&'a String, &'a String)>,
) -> impl Iterator<Item = (String, String)> {
    let base = state.public_url();
    webhooks.map(move |(flow, token)| (flow.clone(), format!("{base}/webhooks/{token}")))
}

/// The environment every hook of `instance` runs in. Reads the customer and the
/// webhooks from the store: a hook runs on the instance as the caller holds it,
/// which may not be what is stored.
pub async fn environment(
    state: &AppState,
    instance: &Instance,
    execution_id: &str,
    log: Arc<dyn LogSink>,
    limits: Limits,
) -> Result<RunEnv, ApiError> {
    let customer_external_id = state
        .store
        .get_customer(&instance.tenant_id, &instance.customer_id)
        .await?
        .and_then(|customer| customer.external_id);
    let webhooks = state
        .store
        .webhooks_of(&instance.tenant_id, &instance.id)
        .await?;
    build_environment(
        state,
        instance,
        customer_external_id,
        &webhooks,
        execution_id,
        log,
        limits,
    )
}

/// The environment an execution runs in, from its instance's context as read from
/// the store (see [`InstanceContext`]): no further store calls.
pub fn context_environment(
    state: &AppState,
    context: &InstanceContext,
    execution_id: &str,
    log: Arc<dyn LogSink>,
    limits: Limits,
) -> Result<RunEnv, ApiError> {
    build_environment(
        state,
        &context.instance,
        context.customer_external_id.clone(),
        &context.webhooks,
        execution_id,
        log,
        limits,
    )
}

fn build_environment(
    state: &AppState,
    instance: &Instance,
    customer_external_id: Option<String>,
    webhooks: &BTreeMap<String, String>,
    execution_id: &str,
    log: Arc<dyn LogSink>,
    limits: Limits,
) -> Result<RunEnv, ApiError> {
    let connections = crate::oauth::provider::HostConnections::new(
        state.clone(),
        &instance.tenant_id,
        &instance.id,
        open_connections(state, instance)?,
    );
    let config = instance
        .config
        .iter()
        .fold(StaticConfig::new(), |config, (key, value)| {
            config.with_json(key.clone(), value.clone())
        });
    let egress = check_hosts(&instance.allowed_hosts)?;
    Ok(RunEnv {
        context: ExecutionContext {
            execution_id: execution_id.to_string(),
            tenant_id: instance.tenant_id.clone(),
            customer_id: Some(instance.customer_id.clone()),
            customer_external_id,
            integration_id: instance.integration_key.clone(),
            instance_id: instance.id.clone(),
            webhook_urls: urls_of(state, webhooks.iter()).collect(),
            ..ExecutionContext::default()
        },
        capabilities: Capabilities {
            state: Arc::new(HostStateStore::new(
                Arc::clone(&state.store),
                state.config.state_quota,
            )),
            connections: Arc::new(connections),
            config: Arc::new(config),
            log,
            egress: Arc::new(egress),
            network: Arc::clone(&state.network),
            invoker: None,
        },
        limits,
        deadline: None,
    })
}

/// Forwards the logs of an instance's hooks and configuration-time data sources to
/// `tracing`: those calls are not executions with a log of their own (the execution id
/// names the call: `<instance>-deploy-<flow>`, `<instance>-data-source-<key>`).
pub(crate) struct CallLog;

impl LogSink for CallLog {
    fn write(&self, record: sluice_runtime::LogRecord) {
        tracing::info!(target: "sluice::instance_call", execution = %record.execution_id, level = %record.level, "{}", record.message);
    }
}

/// Runs one hook kind on every flow with a component trigger.
async fn run_hooks(
    state: &AppState,
    instance: &Instance,
    compiled: &CompiledIntegration,
    hook: InstanceHook,
) -> Result<Vec<HookResult>, ApiError> {
    let label = match hook {
        InstanceHook::Deploy => "deploy",
        InstanceHook::Remove => "remove",
    };
    let mut results = Vec::new();
    for flow in compiled.plan.flow_keys() {
        let env = environment(
            state,
            instance,
            &format!("{}-{label}-{flow}", instance.id),
            Arc::new(CallLog),
            Limits::default(),
        )
        .await?;
        let result = match state
            .engine
            .instance_hook(&compiled.plan, flow, hook, &env)
            .await
        {
            Ok(None) => continue,
            Ok(Some(report)) => HookResult {
                flow: flow.to_string(),
                hook: label,
                status: report.outcome.status().to_string(),
                message: match &report.outcome {
                    sluice_runtime::Outcome::Completed { .. } => None,
                    sluice_runtime::Outcome::GuestError { error } => Some(error.to_string()),
                    other => Some(format!("{other:?}")),
                },
            },
            Err(err) => HookResult {
                flow: flow.to_string(),
                hook: label,
                status: "error".into(),
                message: Some(err.to_string()),
            },
        };
        results.push(result);
    }
    Ok(results)
}

/// Runs the flows that run `on` `event`, each as an execution of its own (recorded
/// like any other, with an empty JSON request), one after another.
async fn run_event_flows(
    state: &AppState,
    instance: &Instance,
    compiled: &CompiledIntegration,
    event: FlowEvent,
) -> Result<Vec<HookResult>, ApiError> {
    let label = match event {
        FlowEvent::InstanceDeploy => "deploy-flow",
        FlowEvent::InstanceRemove => "remove-flow",
    };
    let mut results = Vec::new();
    for flow in compiled.plan.event_flow_keys(event) {
        let now = now_ms();
        let new = crate::queue::NewExecution {
            tenant_id: instance.tenant_id.clone(),
            instance_id: instance.id.clone(),
            flow_key: flow.to_string(),
            trigger: crate::queue::TriggerKind::Event,
            payload: Payload::host_json(("sluice-event", label), b"{}".to_vec(), now),
            parent_id: None,
            replay_of: None,
            singleton: false,
        };
        let execution = new.row(ExecutionStatus::Running, now);
        // With its lease, like every running row: its run renews it, and if the run
        // is lost (the process stops, this request is abandoned) the lease lapses
        // and the execution is ended as interrupted instead of staying running.
        state
            .store
            .insert_execution(
                &execution,
                &new.payload,
                Some(crate::leases::lease_until(state, now)),
            )
            .await?;
        // `None`: the run reads the instance as stored, like a worker's run, rather
        // than this caller's copy.
        let record = execution::run(state, &execution, new.payload, None).await;
        let (status, message) = match record {
            Some(record) if record.succeeded() => ("completed".to_string(), None),
            Some(record) => (
                "failed".to_string(),
                Some(format!(
                    "execution {} failed at step `{}`: {}",
                    execution.id,
                    record.failed_step.as_deref().unwrap_or("?"),
                    record.error.map(|error| error.message).unwrap_or_default()
                )),
            ),
            None => (
                "failed".to_string(),
                Some(format!("execution {} could not run", execution.id)),
            ),
        };
        results.push(HookResult {
            flow: flow.to_string(),
            hook: label,
            status,
            message,
        });
    }
    Ok(results)
}

/// Runs the deploy hooks, then the deploy flows, and records the instance's status.
async fn deploy_hooks(
    state: &AppState,
    instance: &mut Instance,
    compiled: &CompiledIntegration,
) -> Result<Vec<HookResult>, ApiError> {
    let mut results = run_hooks(state, instance, compiled, InstanceHook::Deploy).await?;
    if results.iter().all(|result| result.status == "completed") {
        results
            .extend(run_event_flows(state, instance, compiled, FlowEvent::InstanceDeploy).await?);
    }
    let failures: Vec<String> = results
        .iter()
        .filter(|result| result.status != "completed")
        .map(|result| {
            format!(
                "flow `{}`: {} {}: {}",
                result.flow,
                result.hook,
                result.status,
                result.message.as_deref().unwrap_or("")
            )
        })
        .collect();
    if failures.is_empty() {
        instance.status = InstanceStatus::Deployed;
        instance.status_detail = None;
    } else {
        instance.status = InstanceStatus::Failed;
        instance.status_detail = Some(failures.join("; "));
    }
    instance.updated_ms = now_ms();
    state.store.save_instance(instance).await?;
    crate::scheduler::sync_instance(state, instance).await?;
    Ok(results)
}

/// The webhooks an instance of `compiled` needs: one per flow that runs from a
/// webhook (management flows have none), new tokens.
fn new_webhooks(compiled: &CompiledIntegration) -> Result<Vec<(String, String)>, ApiError> {
    compiled
        .plan
        .webhook_flow_keys()
        .into_iter()
        .map(|flow| Ok((flow.to_string(), new_token()?)))
        .collect()
}

/// A deploy request.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeployRequest {
    pub customer_id: String,
    /// Integration key.
    pub integration: String,
    /// Integration version; the latest when absent.
    pub version: Option<i64>,
    /// Create it as a draft, to be configured (its connections connected) and then
    /// deployed with `POST /v1/instances/{id}/deploy`: nothing is required yet and
    /// no hook runs.
    #[serde(default)]
    pub draft: bool,
    #[serde(flatten)]
    pub settings: InstanceSettings,
}

/// Deploys an integration version for a customer: validates everything, stores the
/// instance with its webhooks, runs the deploy hooks.
pub async fn deploy(
    state: &AppState,
    tenant: &str,
    request: DeployRequest,
) -> Result<(Instance, Vec<HookResult>), ApiError> {
    if state
        .store
        .get_customer(tenant, &request.customer_id)
        .await?
        .is_none()
    {
        return Err(ApiError::not_found(format!(
            "customer `{}`",
            request.customer_id
        )));
    }
    let version = match request.version {
        Some(version) => version,
        None => integrations::latest_version(state, tenant, &request.integration).await?,
    };
    let compiled = integrations::plan(state, tenant, &request.integration, version).await?;
    let settings = request.settings;
    let config = settings.config.unwrap_or_default();
    check_config(&config, &compiled, request.draft)?;
    if !request.draft {
        crate::scheduler::check_config(&compiled, &config)?;
    }
    let flows = settings.flows.unwrap_or_default();
    check_flows(&flows, &compiled)?;
    let allowed_hosts = settings.allowed_hosts.unwrap_or_default();
    check_hosts(&allowed_hosts)?;
    let id = new_id();
    let sealed_connections =
        seal_connections(state, &id, &settings.connections.unwrap_or_default())?;
    let now = now_ms();
    let mut instance = Instance {
        name: settings
            .name
            .unwrap_or_else(|| format!("{} v{version}", request.integration)),
        id,
        tenant_id: tenant.to_string(),
        customer_id: request.customer_id,
        integration_key: request.integration,
        integration_version: version,
        enabled: settings.enabled.unwrap_or(true),
        config,
        sealed_connections,
        allowed_hosts,
        flow_settings: flow_settings(flows),
        status: if request.draft {
            InstanceStatus::Draft
        } else {
            InstanceStatus::Deploying
        },
        status_detail: None,
        created_ms: now,
        updated_ms: now,
    };
    state
        .store
        .create_instance(&instance, &new_webhooks(&compiled)?)
        .await?;
    if request.draft {
        return Ok((instance, Vec::new()));
    }
    // The data sources run on the stored instance (their environment reads it); a
    // value they do not list, or a missing connection, leaves nothing behind.
    let checked = async {
        check_connections(state, &instance, &compiled).await?;
        crate::datasources::check_values(state, &instance, &compiled).await
    }
    .await;
    if let Err(err) = checked {
        state.store.delete_instance(tenant, &instance.id).await?;
        return Err(err);
    }
    let results = deploy_hooks(state, &mut instance, &compiled).await?;
    Ok((instance, results))
}

/// Looks an instance up for `tenant`, or 404.
pub async fn get(state: &AppState, tenant: &str, id: &str) -> Result<Instance, ApiError> {
    state
        .store
        .get_instance(tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("instance `{id}`")))
}

/// Changes settings; new config or connections run the deploy hooks again (hooks are
/// idempotent by contract), so remote webhooks follow new credentials.
pub async fn update(
    state: &AppState,
    tenant: &str,
    id: &str,
    settings: InstanceSettings,
) -> Result<(Instance, Vec<HookResult>), ApiError> {
    let mut instance = get(state, tenant, id).await?;
    let compiled = integrations::instance_plan(state, &instance).await?;
    let draft = instance.status == InstanceStatus::Draft;
    let redeploy = !draft
        && (settings.config.is_some()
            || settings.connections.is_some()
            || settings.allowed_hosts.is_some());
    if let Some(name) = settings.name {
        instance.name = name;
    }
    if let Some(enabled) = settings.enabled {
        instance.enabled = enabled;
    }
    let config_changed = settings.config.is_some();
    if let Some(config) = settings.config {
        check_config(&config, &compiled, draft)?;
        if !draft {
            crate::scheduler::check_config(&compiled, &config)?;
        }
        instance.config = config;
    }
    if let Some(hosts) = settings.allowed_hosts {
        check_hosts(&hosts)?;
        instance.allowed_hosts = hosts;
    }
    if let Some(connections) = settings.connections {
        instance.sealed_connections = seal_connections(state, &instance.id, &connections)?;
    }
    if let Some(flows) = settings.flows {
        check_flows(&flows, &compiled)?;
        instance.flow_settings = flow_settings(flows);
    }
    if config_changed {
        crate::datasources::check_values(state, &instance, &compiled).await?;
    }
    instance.updated_ms = now_ms();
    state.store.save_instance(&instance).await?;
    let results = if redeploy {
        deploy_hooks(state, &mut instance, &compiled).await?
    } else {
        Vec::new()
    };
    // Enabling or disabling starts or stops the instance's schedules.
    crate::scheduler::sync_instance(state, &instance).await?;
    Ok((instance, results))
}

/// Runs the deploy hooks again (after a failure, or to repair remote webhooks).
pub async fn redeploy(
    state: &AppState,
    tenant: &str,
    id: &str,
) -> Result<(Instance, Vec<HookResult>), ApiError> {
    let mut instance = get(state, tenant, id).await?;
    let compiled = integrations::instance_plan(state, &instance).await?;
    // A draft is deployed here first: everything it needs must be set by now. The
    // connections first: a picklist's choices come from them, so a missing connection
    // is what the customer must fix before a missing choice.
    check_connections(state, &instance, &compiled).await?;
    check_config(&instance.config, &compiled, false)?;
    crate::scheduler::check_config(&compiled, &instance.config)?;
    crate::datasources::check_values(state, &instance, &compiled).await?;
    let results = deploy_hooks(state, &mut instance, &compiled).await?;
    Ok((instance, results))
}

/// Moves an instance to another version of its integration: the config must satisfy
/// the new version; flows that disappear lose their webhooks (after their remove
/// hooks ran), new flows get webhooks, and the deploy hooks run.
pub async fn upgrade(
    state: &AppState,
    tenant: &str,
    id: &str,
    version: i64,
) -> Result<(Instance, Vec<HookResult>), ApiError> {
    let mut instance = get(state, tenant, id).await?;
    let old = integrations::instance_plan(state, &instance).await?;
    let new = integrations::plan(state, tenant, &instance.integration_key, version).await?;
    check_config(&instance.config, &new, false)?;
    crate::scheduler::check_config(&new, &instance.config)?;
    let mut results = Vec::new();
    let gone: Vec<&str> = old
        .plan
        .flow_keys()
        .into_iter()
        .filter(|flow| !new.plan.has_flow(flow))
        .collect();
    for flow in gone {
        let env = environment(
            state,
            &instance,
            &format!("{}-remove-{flow}", instance.id),
            Arc::new(CallLog),
            Limits::default(),
        )
        .await?;
        if let Ok(Some(report)) = state
            .engine
            .instance_hook(&old.plan, flow, InstanceHook::Remove, &env)
            .await
        {
            results.push(HookResult {
                flow: flow.to_string(),
                hook: "remove",
                status: report.outcome.status().to_string(),
                message: None,
            });
        }
    }
    instance
        .flow_settings
        .retain(|flow, _| new.plan.has_flow(flow));
    instance.integration_version = version;
    state
        .store
        .set_webhooks(tenant, &instance.id, &new_webhooks(&new)?)
        .await?;
    results.extend(deploy_hooks(state, &mut instance, &new).await?);
    Ok((instance, results))
}

/// Removes an instance: remove hooks (their failures do not stop the removal; they
/// are reported), its flow and instance state, its webhooks and queued executions.
pub async fn remove(state: &AppState, tenant: &str, id: &str) -> Result<Vec<HookResult>, ApiError> {
    let instance = get(state, tenant, id).await?;
    // No scheduled run may start while the remove hooks and flows run.
    crate::scheduler::unschedule(state, &instance).await?;
    let results = match integrations::instance_plan(state, &instance).await {
        Ok(compiled) => {
            let mut results = run_hooks(state, &instance, &compiled, InstanceHook::Remove).await?;
            results.extend(
                run_event_flows(state, &instance, &compiled, FlowEvent::InstanceRemove).await?,
            );
            results
        }
        Err(err) => {
            tracing::warn!(instance = %instance.id, error = %err.message, "removing an instance whose integration no longer loads; hooks skipped");
            Vec::new()
        }
    };
    // Revoke the customer's OAuth grants where the provider offers it; the tokens go
    // with the instance's row.
    if let Err(err) = crate::oauth::revoke_all(state, &instance).await {
        tracing::warn!(instance = %instance.id, error = %err, "revoking the instance's OAuth grants failed");
    }
    for prefix in instance_namespace_prefixes(&instance.id) {
        state.store.state_delete_prefix(tenant, &prefix).await?;
    }
    state.store.delete_instance(tenant, id).await?;
    Ok(results)
}

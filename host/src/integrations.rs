//! Integrations: a published definition is parsed, its component pins resolved against
//! the tenant's registry and compiled by the flow engine, then stored with the pins
//! resolved; [`plan`] hands executions the compiled plan, cached per version.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use axum::http::StatusCode;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use sluice_runtime::flow::{
    CatalogEntry, ComponentCatalog, ComponentPin, Definition, Format, InvalidDefinition, Plan,
    check_code_steps, compile_with,
};

use crate::api::error::{ApiError, ErrorDetail};
use crate::app::AppState;
use crate::registry;
use crate::store::components::ComponentVersion;
use crate::store::integrations::{IntegrationVersion, NewIntegrationVersion, Pin};

/// An integration version compiled for execution. Built once per version and shared.
pub struct CompiledIntegration {
    pub key: String,
    pub version: i64,
    /// The executable form.
    pub plan: Plan,
    /// The definition as stored: pins name registry versions (`version` is the number
    /// as a string) and carry the hash.
    pub definition: Definition,
    /// The pinned components, by component key.
    pub components: BTreeMap<String, CatalogEntry>,
    /// Component key → registry version and hash.
    pub pins: BTreeMap<String, Pin>,
}

impl std::fmt::Debug for CompiledIntegration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledIntegration")
            .field("key", &self.key)
            .field("version", &self.version)
            .field("plan", &self.plan)
            .field("pins", &self.pins)
            .finish_non_exhaustive()
    }
}

/// Compiled integration versions by (tenant, key, version). Versions are immutable and
/// the components they pin cannot be deleted, so an entry never goes stale.
#[derive(Default)]
pub struct PlanCache {
    plans: Mutex<HashMap<(String, String, i64), Arc<CompiledIntegration>>>,
}

impl PlanCache {
    fn get(&self, tenant: &str, key: &str, version: i64) -> Option<Arc<CompiledIntegration>> {
        let plans = self.plans.lock().unwrap_or_else(PoisonError::into_inner);
        plans
            .get(&(tenant.to_string(), key.to_string(), version))
            .cloned()
    }

    /// Keeps the first entry when two requests compiled the same version at once, so
    /// every caller shares one plan.
    fn insert(&self, tenant: &str, compiled: CompiledIntegration) -> Arc<CompiledIntegration> {
        let mut plans = self.plans.lock().unwrap_or_else(PoisonError::into_inner);
        plans
            .entry((tenant.to_string(), compiled.key.clone(), compiled.version))
            .or_insert_with(|| Arc::new(compiled))
            .clone()
    }

    /// How many versions are cached.
    pub fn len(&self) -> usize {
        self.plans
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The components a definition pins, as resolved from the registry: entries are found
/// by component key and the pin's `version` as written in the (resolved) definition.
#[derive(Default)]
struct RegistryCatalog {
    entries: BTreeMap<(String, String), CatalogEntry>,
    /// What the registry has of each pinned key, for error messages.
    known: BTreeMap<String, Vec<String>>,
    code_engine: Option<CatalogEntry>,
}

impl RegistryCatalog {
    fn new(state: &AppState) -> Self {
        RegistryCatalog {
            code_engine: state.code_engine.clone(),
            ..RegistryCatalog::default()
        }
    }
}

impl ComponentCatalog for RegistryCatalog {
    fn lookup(&self, key: &str, version: &str) -> Option<CatalogEntry> {
        self.entries
            .get(&(key.to_string(), version.to_string()))
            .cloned()
    }

    fn versions(&self, key: &str) -> Vec<String> {
        self.known.get(key).cloned().unwrap_or_default()
    }

    fn code_engine(&self) -> Option<CatalogEntry> {
        self.code_engine.clone()
    }
}

/// 422 with every problem of a definition.
pub fn invalid_definition(err: InvalidDefinition) -> ApiError {
    let count = err.errors.len();
    let details = err
        .errors
        .into_iter()
        .map(|error| ErrorDetail {
            path: error.path,
            message: error.message,
            line: error.line,
            column: error.column,
        })
        .collect();
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-definition",
        format!(
            "the definition has {count} error{}; `details` lists each with its path",
            if count == 1 { "" } else { "s" }
        ),
    )
    .with_details(details)
}

/// A pin's version read as a registry version number: digits only, at least 1.
pub fn registry_number(version: &str) -> Option<i64> {
    if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    version.parse::<i64>().ok().filter(|number| *number > 0)
}

/// Which registry version a pin names: a number names that version; any other string
/// names the newest version whose manifest declares it (the one with the pin's hash,
/// when the pin has one and such a version exists).
fn resolve_pin<'a>(
    versions: &'a [ComponentVersion],
    pin: &ComponentPin,
) -> Option<&'a ComponentVersion> {
    if let Some(number) = registry_number(&pin.version) {
        return versions.iter().find(|row| row.version == number);
    }
    let declaring: Vec<&ComponentVersion> = versions
        .iter()
        .filter(|row| registry::declared_version(row) == pin.version)
        .collect();
    let pinned_hash = pin.hash.as_deref().map(|hash| {
        hash.strip_prefix("sha256:")
            .unwrap_or(hash)
            .to_ascii_lowercase()
    });
    pinned_hash
        .and_then(|hash| declaring.iter().find(|row| row.hash == hash).copied())
        .or_else(|| declaring.iter().max_by_key(|row| row.version).copied())
}

/// A JSON value with every object's keys in sorted order, so equal definitions
/// serialize to equal text whatever order their maps were written in.
fn canonical(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(key, value)| (key, canonical(value)))
                    .collect::<Map<String, Value>>(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        other => other,
    }
}

/// Validates, resolves and stores a definition as a version of integration `key`.
/// Returns the version and whether it is new (`false`: an identical definition, pins
/// resolved, already was that version).
pub async fn publish(
    state: &AppState,
    tenant: &str,
    key: &str,
    text: &str,
    format: Format,
) -> Result<(IntegrationVersion, bool), ApiError> {
    registry::check_key("integration", key).map_err(ApiError::invalid)?;
    let definition = Definition::parse(text, format).map_err(invalid_definition)?;

    // Resolve each pin to a registry version; a pin that resolves to nothing is left
    // as written, and `compile` reports it with the rest.
    let mut resolved = definition.clone();
    let mut catalog = RegistryCatalog::new(state);
    let mut pins = BTreeMap::new();
    for (component, pin) in &definition.components {
        if registry::check_key("component", component).is_err() {
            continue;
        }
        let versions = state.store.component_versions(tenant, component).await?;
        catalog.known.insert(
            component.clone(),
            versions
                .iter()
                .map(|row| {
                    format!(
                        "{} (declares {})",
                        row.version,
                        registry::declared_version(row)
                    )
                })
                .collect(),
        );
        let Some(row) = resolve_pin(&versions, pin) else {
            continue;
        };
        let (loaded, manifest) = registry::load_version(state, tenant, row).await?;
        let number = row.version.to_string();
        // A pinned hash that differs is kept, so `compile` reports the mismatch.
        let hash_matches = pin.hash.as_deref().is_none_or(|hash| {
            hash.strip_prefix("sha256:")
                .unwrap_or(hash)
                .eq_ignore_ascii_case(&row.hash)
        });
        resolved.components.insert(
            component.clone(),
            ComponentPin {
                version: number.clone(),
                hash: Some(if hash_matches {
                    row.hash.clone()
                } else {
                    pin.hash.clone().unwrap_or_default()
                }),
            },
        );
        catalog.entries.insert(
            (component.clone(), number),
            CatalogEntry {
                component: loaded,
                manifest,
            },
        );
        pins.insert(
            component.clone(),
            Pin {
                version: row.version,
                hash: row.hash.clone(),
            },
        );
    }
    // Checked against the cap the server's engine runs executions with, so a loop it
    // cannot run is refused now rather than failing every execution.
    let plan = compile_with(&resolved, &catalog, state.config.max_step_runs)
        .map_err(invalid_definition)?;
    // Code steps compile in the engine, so a syntax error is found now, at its path.
    if let Some(engine) = &catalog.code_engine {
        let errors = check_code_steps(&state.runtime, engine, plan.code_steps()).await;
        if !errors.is_empty() {
            return Err(invalid_definition(InvalidDefinition { errors }));
        }
    }

    // Stored with the pins as `{version: N, hash}`, N a JSON number: the registry
    // version, not a manifest's version string.
    let mut stored = resolved.to_json_value();
    if let Some(components) = stored.get_mut("components").and_then(Value::as_object_mut) {
        for (component, pin) in &pins {
            components.insert(
                component.clone(),
                json!({"version": pin.version, "hash": pin.hash}),
            );
        }
    }
    let stored = canonical(stored).to_string();
    let definition_hash = hex::encode(Sha256::digest(stored.as_bytes()));
    let (row, created) = state
        .store
        .put_integration_version(
            tenant,
            NewIntegrationVersion {
                key: key.to_string(),
                definition: stored,
                definition_hash,
                pins: pins.clone(),
            },
        )
        .await?;
    if created {
        tracing::info!(
            tenant,
            key,
            version = row.version,
            "integration version published"
        );
    }
    // The plan just compiled is the plan of this version: executions need not compile
    // it again.
    let components = catalog
        .entries
        .into_iter()
        .map(|((component, _), entry)| (component, entry))
        .collect();
    state.plans.insert(
        tenant,
        CompiledIntegration {
            key: key.to_string(),
            version: row.version,
            plan,
            definition: resolved,
            components,
            pins,
        },
    );
    Ok((row, created))
}

/// The newest version of integration `key` of `tenant` (404 when it has none).
pub async fn latest_version(state: &AppState, tenant: &str, key: &str) -> Result<i64, ApiError> {
    state
        .store
        .integration_versions(tenant, key)
        .await?
        .last()
        .map(|row| row.version)
        .ok_or_else(|| ApiError::not_found(format_args!("integration `{key}`")))
}

/// The integration version an instance runs, compiled (see [`plan`]).
pub async fn instance_plan(
    state: &AppState,
    instance: &crate::store::instances::Instance,
) -> Result<Arc<CompiledIntegration>, ApiError> {
    plan(
        state,
        &instance.tenant_id,
        &instance.integration_key,
        instance.integration_version,
    )
    .await
}

/// Integration `key` at `version` of `tenant`, compiled: from the cache, else loaded
/// from the store, its pinned components loaded from the registry and compiled once.
/// 404 when the tenant has no such version.
pub async fn plan(
    state: &AppState,
    tenant: &str,
    key: &str,
    version: i64,
) -> Result<Arc<CompiledIntegration>, ApiError> {
    if let Some(compiled) = state.plans.get(tenant, key, version) {
        return Ok(compiled);
    }
    let row = state
        .store
        .integration_version(tenant, key, version)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format_args!("integration `{key}` version {version}"))
        })?;
    let broken = |message: String| {
        ApiError::internal(format!(
            "integration `{key}` version {version} (tenant {tenant}): {message}"
        ))
    };
    let definition = Definition::from_json(&row.definition)
        .map_err(|err| broken(format!("the stored definition does not parse: {err}")))?;
    let mut catalog = RegistryCatalog::new(state);
    let mut components = BTreeMap::new();
    for (component, pin) in &row.pins {
        let (loaded, manifest) = registry::load(state, tenant, component, pin.version)
            .await
            .map_err(|err| {
                broken(format!(
                    "pinned component `{component}` version {}: {}",
                    pin.version, err.message
                ))
            })?;
        if loaded.hash().to_hex() != pin.hash {
            return Err(broken(format!(
                "pinned component `{component}` version {} has hash {}, not {}",
                pin.version,
                loaded.hash(),
                pin.hash
            )));
        }
        let entry = CatalogEntry {
            component: loaded,
            manifest,
        };
        catalog
            .entries
            .insert((component.clone(), pin.version.to_string()), entry.clone());
        components.insert(component.clone(), entry);
    }
    // Not against the step-run cap: a version published under a higher cap still
    // loads after the cap is lowered, and the engine enforces the cap when it runs.
    let plan = compile_with(&definition, &catalog, usize::MAX)
        .map_err(|err| broken(format!("the stored definition no longer compiles: {err}")))?;
    Ok(state.plans.insert(
        tenant,
        CompiledIntegration {
            key: row.key,
            version: row.version,
            plan,
            definition,
            components,
            pins: row.pins,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(version: i64, declared: &str, hash: &str) -> ComponentVersion {
        ComponentVersion {
            key: "github".into(),
            version,
            hash: hash.into(),
            world: "component".into(),
            manifest: json!({"key": "github", "version": declared}).to_string(),
            size: 1,
            created_ms: 0,
            compile: Default::default(),
        }
    }

    fn pin(version: &str, hash: Option<&str>) -> ComponentPin {
        ComponentPin {
            version: version.into(),
            hash: hash.map(str::to_string),
        }
    }

    #[test]
    fn pins_resolve_to_registry_versions() {
        let versions = [
            row(1, "0.1.0", "aa"),
            row(2, "0.1.0", "bb"),
            row(3, "0.2.0", "cc"),
        ];
        let number = |p: ComponentPin| resolve_pin(&versions, &p).map(|row| row.version);
        assert_eq!(number(pin("2", None)), Some(2));
        assert_eq!(number(pin("9", None)), None);
        assert_eq!(number(pin("0.1.0", None)), Some(2), "newest declaring it");
        assert_eq!(
            number(pin("0.1.0", Some("sha256:AA"))),
            Some(1),
            "the pinned build"
        );
        assert_eq!(number(pin("0.2.0", None)), Some(3));
        assert_eq!(number(pin("1.0.0", None)), None);
        assert_eq!(registry_number("0"), None);
        assert_eq!(registry_number("-1"), None);
        assert_eq!(registry_number("12"), Some(12));
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let value = json!({"b": [{"z": 1, "a": 2}], "a": {"d": 1, "c": 2}});
        assert_eq!(
            canonical(value).to_string(),
            r#"{"a":{"c":2,"d":1},"b":[{"a":2,"z":1}]}"#
        );
    }
}

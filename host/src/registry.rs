//! The component registry: an upload is validated and compiled by the runtime, indexed
//! under the key its manifest declares and numbered per key (identical bytes are the
//! same version); [`load`] hands the rest of the host a compiled component. Every
//! compile waits first for a slot of its tenant ([`TenantSlots`]), then for a
//! host slot (the runtime's compile concurrency), and runs in the runtime's compile
//! worker under CPU-time and memory limits. [`start_upload`] runs that off the request
//! path: a compile that outlasts the caller's wait goes on, and its status is kept.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::http::StatusCode;
use bytes::Bytes;
use serde_json::Value;
use sluice_runtime::flow::ComponentManifest;
use sluice_runtime::{
    Call, Capabilities, ContentHash, ExecuteError, ExecutionContext, Limits, LoadError,
    LoadedComponent, Outcome, Returned, World,
};

use crate::api::error::ApiError;
use crate::app::AppState;
use crate::store::components::{CompileRecord, ComponentVersion, NewComponentVersion};
use crate::store::uploads::{ComponentUpload, UploadStatus};

/// Uploads a tenant may have in progress (compiling, or waiting for a compile slot),
/// whether their client waits or not: each holds its bytes (up to the upload limit,
/// 64 MiB by default) until its compile ends, so a client that answers nothing but
/// `Prefer: respond-async` cannot make the host hold an unbounded number.
pub const MAX_UPLOADS_IN_PROGRESS: usize = 4;

/// Per-tenant slots: the compiles each tenant may run at once (a tenant's compiles
/// queue behind its own slots before they take a host slot, so one tenant uploading
/// many slow components cannot occupy every host slot), and the uploads it may have
/// in progress ([`MAX_UPLOADS_IN_PROGRESS`]).
pub struct TenantSlots {
    per_tenant: usize,
    tenants: Mutex<HashMap<String, Arc<tokio::sync::Semaphore>>>,
}

impl TenantSlots {
    pub fn new(per_tenant: usize) -> Self {
        TenantSlots {
            per_tenant: per_tenant.max(1),
            tenants: Mutex::new(HashMap::new()),
        }
    }

    fn slots(&self, tenant: &str) -> Arc<tokio::sync::Semaphore> {
        let mut tenants = self.tenants.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(
            tenants
                .entry(tenant.to_string())
                .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(self.per_tenant))),
        )
    }

    /// One of `tenant`'s slots if one is free now.
    pub fn try_acquire(&self, tenant: &str) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.slots(tenant).try_acquire_owned().ok()
    }

    /// Waits for one of `tenant`'s slots; the slot is free again when the permit drops.
    pub async fn acquire(&self, tenant: &str) -> tokio::sync::OwnedSemaphorePermit {
        let slots = self.slots(tenant);
        loop {
            // The semaphore is never closed; were it, waiting again is still right.
            if let Ok(permit) = Arc::clone(&slots).acquire_owned().await {
                return permit;
            }
        }
    }
}

/// Longest component or integration key.
pub const MAX_KEY_LEN: usize = 128;

/// Checks a component or integration key: letters, digits, `-` and `_`, starting and
/// ending with a letter or digit (the flow engine's rule for component keys, and safe
/// in a URL path).
pub fn check_key(what: &str, key: &str) -> Result<(), String> {
    let edges = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    let valid = edges(key.chars().next())
        && edges(key.chars().last())
        && key.len() <= MAX_KEY_LEN
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "invalid {what} key `{key}`: use at most {MAX_KEY_LEN} letters, digits, `-` and `_`, \
             starting and ending with a letter or digit"
        ))
    }
}

/// The budget of the `manifest()` call made on upload: far below an execution's,
/// since an upload is answered synchronously and a manifest is a constant.
fn manifest_limits() -> Limits {
    Limits::default()
        .fuel(1_000_000_000)
        .timeout(Duration::from_secs(5))
}

fn invalid_component(status: StatusCode, message: impl Into<String>) -> ApiError {
    ApiError::new(status, "invalid-component", message)
}

/// Answers a refused upload with the runtime's reason: 400 for bytes that are not a
/// well-formed component, 422 for a component Sluice does not accept.
fn load_error(err: LoadError) -> ApiError {
    match err {
        LoadError::TooLarge { .. } => ApiError::too_large(err.to_string()),
        LoadError::NotWasm(_) | LoadError::CoreModule | LoadError::Malformed(_) => {
            invalid_component(StatusCode::BAD_REQUEST, err.to_string())
        }
        LoadError::ForbiddenImport { .. }
        | LoadError::NotSluice { .. }
        | LoadError::WorldMismatch { .. }
        | LoadError::Compile(_) => {
            invalid_component(StatusCode::UNPROCESSABLE_ENTITY, err.to_string())
        }
        LoadError::CompileLimit(_) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "compile-limit",
            err.to_string(),
        ),
        other => ApiError::internal(other),
    }
}

/// Runs `f` on the blocking pool: compiling (or mapping a cached artifact) must not
/// stall the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ApiError::internal)
}

fn parse_world(text: &str) -> Option<World> {
    match text {
        "component" => Some(World::Component),
        "flow" => Some(World::Flow),
        _ => None,
    }
}

/// The version a stored version's manifest declares (`0.0.0` for a flow that declares
/// none, as the flow engine reads it).
pub fn declared_version(row: &ComponentVersion) -> String {
    let document: Value = serde_json::from_str(&row.manifest).unwrap_or(Value::Null);
    match document.get("version").and_then(Value::as_str) {
        Some(version) => version.to_string(),
        None => "0.0.0".to_string(),
    }
}

/// Calls `manifest()` on a freshly loaded upload and parses it.
async fn read_manifest(
    state: &AppState,
    tenant: &str,
    component: &LoadedComponent,
) -> Result<(ComponentManifest, String), ApiError> {
    let hash = component.hash();
    let report = state
        .runtime
        .execute(
            component,
            Call::Manifest,
            ExecutionContext {
                execution_id: format!("upload-{}", hash.short()),
                tenant_id: tenant.to_string(),
                attempt: 1,
                ..ExecutionContext::default()
            },
            &Capabilities::default(),
            &manifest_limits(),
        )
        .await
        .map_err(|err| match err {
            ExecuteError::Busy { .. } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                format!("{err}; upload the component again"),
            ),
            other => ApiError::internal(other),
        })?;
    let unprocessable = |message: String| {
        invalid_component(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("the component's manifest {message}"),
        )
    };
    let text = match report.outcome {
        Outcome::Completed {
            result: Returned::Manifest(text),
        } => text,
        Outcome::GuestError { error } => {
            return Err(unprocessable(format!(
                "could not be read: manifest() returned an error: {}",
                error.message
            )));
        }
        Outcome::Trap { message, .. } => {
            return Err(unprocessable(format!(
                "could not be read: manifest() trapped: {message}"
            )));
        }
        other => {
            return Err(unprocessable(format!(
                "could not be read: manifest() ended with {}",
                other.status()
            )));
        }
    };
    let manifest = ComponentManifest::parse(&text, component.world()).map_err(unprocessable)?;
    check_key("component", &manifest.key)
        .map_err(|message| unprocessable(format!("declares an {message}")))?;
    Ok((manifest, text))
}

/// What [`start_upload`] can answer.
#[derive(Debug)]
pub enum UploadAnswer {
    /// The upload ended within the wait: the version (and whether it is new), or why
    /// it was refused.
    Done(Result<(ComponentVersion, bool), ApiError>),
    /// Still compiling; the record says where to follow it.
    Compiling(ComponentUpload),
}

/// Size and structure checks, which need no compile: answered before an upload is
/// recorded, so a client mistake gets its error at once.
fn precheck(state: &AppState, bytes: &Bytes) -> Result<(), ApiError> {
    let limit = state.config.max_component_bytes;
    if bytes.len() > limit {
        return Err(ApiError::too_large(format!(
            "the component is {} bytes; the limit is {limit} bytes",
            bytes.len()
        )));
    }
    if bytes.is_empty() {
        return Err(invalid_component(
            StatusCode::BAD_REQUEST,
            "the body is empty: send the component's bytes (a .wasm file)",
        ));
    }
    sluice_runtime::check_component(bytes)
        .map(|_| ())
        .map_err(load_error)
}

/// Registers an upload like [`upload`], but answers after at most `wait`: the compile
/// of a large component (a JavaScript or Python runtime compiles for seconds) goes on
/// in the background, recorded as a [`ComponentUpload`] whose status the client
/// follows. The compile holds the same tenant and host slots as a synchronous one.
pub async fn start_upload(
    state: &AppState,
    tenant: &str,
    bytes: Bytes,
    wait: Duration,
) -> Result<UploadAnswer, ApiError> {
    precheck(state, &bytes)?;
    let in_progress = state.upload_slots.try_acquire(tenant).ok_or_else(|| {
        ApiError::rate_limited(format!(
            "{MAX_UPLOADS_IN_PROGRESS} uploads of this tenant are already compiling or \
             waiting to; upload again when one has ended (GET /v1/component-uploads/{{id}})"
        ))
    })?;
    let size = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
    let hash = ContentHash::of(&bytes).to_hex();
    let record = state.store.create_upload(tenant, size, &hash).await?;
    let (done, outcome) = tokio::sync::oneshot::channel();
    let (task_state, task_tenant, id) = (state.clone(), tenant.to_string(), record.id.clone());
    tokio::spawn(async move {
        let result = register(&task_state, &task_tenant, bytes).await;
        let status = match &result {
            Ok((row, created)) => UploadStatus::Ready {
                key: row.key.clone(),
                version: row.version,
                created: *created,
            },
            Err(err) => UploadStatus::Failed {
                code: err.code.to_string(),
                message: err.message.clone(),
            },
        };
        if let Err(err) = task_state
            .store
            .finish_upload(&task_tenant, &id, status)
            .await
        {
            tracing::error!(tenant = %task_tenant, upload = %id, error = %err, "could not record how an upload ended");
        }
        drop(in_progress);
        // The caller may have stopped waiting; the status is in the store.
        let _ = done.send(result);
    });
    match tokio::time::timeout(wait, outcome).await {
        Ok(Ok(result)) => Ok(UploadAnswer::Done(result)),
        // The task ended without a result (it panicked): what the store holds is all
        // there is to say.
        Ok(Err(_)) => Err(ApiError::internal(format!(
            "the compile task of upload {} ended without a result",
            record.id
        ))),
        Err(_) => Ok(UploadAnswer::Compiling(record)),
    }
}

/// Registers an uploaded component for `tenant`: validates and compiles it, reads its
/// manifest and stores it under the manifest's key. Returns the version and whether it
/// is new (`false`: these bytes were already that version).
pub async fn upload(
    state: &AppState,
    tenant: &str,
    bytes: Bytes,
) -> Result<(ComponentVersion, bool), ApiError> {
    precheck(state, &bytes)?;
    register(state, tenant, bytes).await
}

/// [`upload`] after its prechecks: the compile, the manifest and the store.
async fn register(
    state: &AppState,
    tenant: &str,
    bytes: Bytes,
) -> Result<(ComponentVersion, bool), ApiError> {
    let runtime = state.runtime.clone();
    let source = bytes.clone();
    let slot = state.compile_slots.acquire(tenant).await;
    let component = blocking(move || runtime.load(&source))
        .await?
        .map_err(load_error)?;
    drop(slot);
    let stats = component.compile_stats();
    let (manifest, document) = read_manifest(state, tenant, &component).await?;
    // Stored compact, whatever whitespace the guest used.
    let document = serde_json::from_str::<Value>(&document)
        .map(|value| value.to_string())
        .unwrap_or(document);
    let (row, created) = state
        .store
        .put_component_version(
            tenant,
            NewComponentVersion {
                key: manifest.key.clone(),
                hash: component.hash().to_hex(),
                world: component.world().name().to_string(),
                manifest: document,
                bytes,
                compile: CompileRecord {
                    time_us: stats.map(|stats| {
                        i64::try_from(stats.compile_time.as_micros()).unwrap_or(i64::MAX)
                    }),
                    peak_memory_bytes: stats
                        .and_then(|stats| stats.peak_memory_bytes)
                        .map(|bytes| i64::try_from(bytes).unwrap_or(i64::MAX)),
                },
            },
        )
        .await?;
    if created {
        tracing::info!(tenant, key = %row.key, version = row.version, hash = %row.hash, "component version uploaded");
    }
    Ok((row, created))
}

/// The compiled component of a stored version: from the runtime's artifact cache
/// (which survives restarts) when it has it, else recompiled from the stored bytes.
async fn compiled(
    state: &AppState,
    tenant: &str,
    row: &ComponentVersion,
) -> Result<LoadedComponent, ApiError> {
    let hash: ContentHash = row.hash.parse().map_err(ApiError::internal)?;
    let runtime = state.runtime.clone();
    match blocking(move || runtime.load_cached(&hash)).await? {
        Ok(component) => return Ok(component),
        Err(err) => tracing::info!(
            key = %row.key, version = row.version, error = %err,
            "component not in the artifact cache; recompiling from the stored bytes"
        ),
    }
    let bytes = state
        .store
        .component_bytes(tenant, &row.key, row.version)
        .await?
        .ok_or_else(|| {
            ApiError::internal(format!(
                "the bytes of component `{}` version {} are missing from the store",
                row.key, row.version
            ))
        })?;
    let runtime = state.runtime.clone();
    // Concurrent executions of a version missing from the cache compile it once: the
    // runtime makes later loads of the same bytes wait for the first.
    let slot = state.compile_slots.acquire(tenant).await;
    let component = blocking(move || runtime.load(&bytes))
        .await?
        .map_err(|err| {
            ApiError::internal(format!(
                "component `{}` version {} no longer loads: {err}",
                row.key, row.version
            ))
        })?;
    drop(slot);
    if component.hash() != hash {
        return Err(ApiError::internal(format!(
            "the stored bytes of component `{}` version {} hash to {}, not {}",
            row.key,
            row.version,
            component.hash(),
            row.hash
        )));
    }
    Ok(component)
}

/// The compiled component and parsed manifest of a version row already read.
pub async fn load_version(
    state: &AppState,
    tenant: &str,
    row: &ComponentVersion,
) -> Result<(LoadedComponent, Arc<ComponentManifest>), ApiError> {
    let component = compiled(state, tenant, row).await?;
    let world = parse_world(&row.world).unwrap_or(component.world());
    let manifest = ComponentManifest::parse(&row.manifest, world).map_err(|message| {
        ApiError::internal(format!(
            "the stored manifest of component `{}` version {} {message}",
            row.key, row.version
        ))
    })?;
    Ok((component, Arc::new(manifest)))
}

/// Component `key` at registry `version` of `tenant`, compiled and ready to run, with
/// its manifest. 404 when the tenant has no such version.
pub async fn load(
    state: &AppState,
    tenant: &str,
    key: &str,
    version: i64,
) -> Result<(LoadedComponent, Arc<ComponentManifest>), ApiError> {
    let row = state
        .store
        .component_version(tenant, key, version)
        .await?
        .ok_or_else(|| ApiError::not_found(format_args!("component `{key}` version {version}")))?;
    load_version(state, tenant, &row).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_component_key_rule() {
        for good in ["github", "a", "my-thing_2", "X9"] {
            assert!(check_key("component", good).is_ok(), "{good}");
        }
        for bad in ["", "-a", "a-", "a b", "a.b", "é", &"a".repeat(129)] {
            assert!(check_key("component", bad).is_err(), "{bad}");
        }
    }
}

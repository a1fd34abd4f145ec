//! [`AppState`]: what every request handler and background task shares (the store,
//! the runtime and flow engine, secrets, settings), built once at startup.

use std::ops::Deref;
use std::sync::Arc;

use sluice_runtime::flow::{EngineOptions, FlowEngine};
use sluice_runtime::{NetworkPolicy, Runtime, RuntimeConfig};

use crate::config::ServerConfig;
use crate::execution::HostResultStore;
use crate::integrations::PlanCache;
use crate::queue::QueueSignal;
use crate::secrets::Secrets;
use crate::store::Store;
use crate::store::sqlite::SqliteStore;

/// Shared by handlers and tasks. Cloning is cheap.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Shared>,
}

/// The parts of [`AppState`].
pub struct Shared {
    pub store: Arc<dyn Store>,
    pub runtime: Runtime,
    pub engine: FlowEngine,
    pub secrets: Secrets,
    pub config: ServerConfig,
    /// Wakes the workers when an execution is queued.
    pub queue: Arc<QueueSignal>,
    /// Compiled integration versions (`integrations::plan`), so executions never
    /// re-parse or recompile a definition.
    pub plans: PlanCache,
    /// Per-endpoint webhook rate limit (`config.webhook_rate_limit`).
    pub rate_limit: crate::ratelimit::WebhookRateLimit,
    /// The operator's network policy for guests' outbound HTTP (the ranges opened by
    /// `config.egress_allow_cidrs`), shared by every execution so the per-tenant cap
    /// on requests in flight counts across them.
    pub network: Arc<NetworkPolicy>,
    /// Per-tenant compile slots (`config.compile_concurrency_per_tenant`).
    pub compile_slots: crate::registry::TenantSlots,
    /// Per-tenant uploads in progress (`registry::MAX_UPLOADS_IN_PROGRESS`).
    pub upload_slots: crate::registry::TenantSlots,
    /// Refreshes OAuth tokens, one refresh per connection at a time.
    pub oauth: crate::oauth::Refresher,
    /// The engine of inline code steps (`config.code_engine`), compiled at start.
    pub code_engine: Option<sluice_runtime::flow::CatalogEntry>,
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.inner
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot create the data directory {path}: {error}")]
    DataDir { path: String, error: std::io::Error },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Secrets(#[from] crate::secrets::SecretsError),
    #[error(transparent)]
    Runtime(#[from] sluice_runtime::RuntimeError),
    #[error(transparent)]
    Egress(#[from] sluice_runtime::CidrError),
    #[error("cannot use the code engine {path}: {message}")]
    CodeEngine { path: String, message: String },
}

/// Loads the code-step engine built from `runtime/code-engine` (compiled once, then
/// from the artifact cache) and reads its manifest.
async fn load_code_engine(
    runtime: &Runtime,
    path: &std::path::Path,
) -> Result<sluice_runtime::flow::CatalogEntry, StartError> {
    let failed = |message: String| StartError::CodeEngine {
        path: path.display().to_string(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|err| failed(err.to_string()))?;
    let loader = runtime.clone();
    let component = tokio::task::spawn_blocking(move || loader.load(&bytes))
        .await
        .map_err(|err| failed(err.to_string()))?
        .map_err(|err| failed(err.to_string()))?;
    let entry = sluice_runtime::flow::CatalogEntry::read(runtime, component)
        .await
        .map_err(|err| failed(err.to_string()))?;
    let manifest = &entry.manifest;
    if manifest.key != sluice_runtime::flow::CODE_ENGINE_KEY
        || !manifest.actions.contains_key("run")
        || !manifest.actions.contains_key("check")
    {
        return Err(failed(format!(
            "it is component `{}`, not the code engine (`{}` with actions `run` and `check`, \
             built by runtime/code-engine/build.sh)",
            manifest.key,
            sluice_runtime::flow::CODE_ENGINE_KEY
        )));
    }
    Ok(entry)
}

impl AppState {
    /// Opens the data directory (store, secret key, artifact cache) and builds the
    /// runtime.
    pub async fn open(config: ServerConfig) -> Result<Self, StartError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|error| StartError::DataDir {
            path: config.data_dir.display().to_string(),
            error,
        })?;
        let store = SqliteStore::open(&config.database_path()).await?;
        let secrets = Secrets::load_or_create(&config.data_dir)?;
        let runtime = Runtime::new(
            RuntimeConfig::default()
                .max_concurrency(config.concurrency)
                .busy_wait(config.busy_wait)
                .max_component_bytes(config.max_component_bytes)
                .compiler(config.compiler.clone())
                .compile_concurrency(config.compile_concurrency)
                .tenant_parallelism(config.tenant_parallelism)
                .cache_dir(config.artifacts_dir()),
        )?;
        let store: Arc<dyn Store> = Arc::new(store);
        // Compiles run in this process: those of a previous run will never finish.
        // (With several hosts on one database this must become per host.)
        let interrupted = store
            .fail_unfinished_uploads(
                "the server stopped before the compile ended; upload the component again",
            )
            .await?;
        if interrupted > 0 {
            tracing::warn!(
                uploads = interrupted,
                "uploads whose compile a previous run left unfinished were failed"
            );
        }
        let launcher = Arc::new(crate::crossflow::HostLauncher::default());
        let engine = FlowEngine::with_options(
            runtime.clone(),
            EngineOptions {
                results: Arc::new(HostResultStore::new(Arc::clone(&store))),
                launcher: Some(launcher.clone()),
                max_step_runs: config.max_step_runs,
                ..EngineOptions::default()
            },
        );
        let rate_limit = crate::ratelimit::WebhookRateLimit::new(config.webhook_rate_limit);
        let network = config
            .egress_allow_cidrs
            .iter()
            .try_fold(NetworkPolicy::new(), |network, cidr| {
                network.allow_cidr(cidr)
            })?;
        let compile_slots =
            crate::registry::TenantSlots::new(config.compile_concurrency_per_tenant);
        let code_engine = match &config.code_engine {
            Some(path) => Some(load_code_engine(&runtime, path).await?),
            None => None,
        };
        let state = AppState {
            inner: Arc::new(Shared {
                store,
                engine,
                runtime,
                secrets,
                config,
                queue: Arc::new(QueueSignal::default()),
                plans: PlanCache::default(),
                rate_limit,
                network: Arc::new(network),
                compile_slots,
                upload_slots: crate::registry::TenantSlots::new(
                    crate::registry::MAX_UPLOADS_IN_PROGRESS,
                ),
                oauth: crate::oauth::Refresher::default(),
                code_engine,
            }),
        };
        launcher.bind(&state);
        Ok(state)
    }

    /// A handle that does not keep the state alive, for parts the state owns (the
    /// engine's flow launcher), which would otherwise keep it alive forever.
    pub fn downgrade(&self) -> std::sync::Weak<Shared> {
        Arc::downgrade(&self.inner)
    }

    /// The state behind a [`downgrade`](Self::downgrade)d handle, while it lives.
    pub fn upgrade(weak: &std::sync::Weak<Shared>) -> Option<AppState> {
        weak.upgrade().map(|inner| AppState { inner })
    }

    /// The base URL webhooks are given under.
    pub fn public_url(&self) -> String {
        self.config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.config.listen))
    }
}

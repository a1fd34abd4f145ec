//! The embedded store: one SQLite file in WAL mode behind a small connection pool
//! (`deadpool-sqlite`) for reads and the API's writes, and one writer thread for the
//! execution paths' writes (`writer`: group commit), with its schema applied by
//! numbered migrations. One module per resource implements that resource's trait.

mod components;
mod customers;
mod embed_sessions;
mod embed_settings;
mod executions;
mod instances;
mod integrations;
mod oauth;
mod schedules;
mod signing_keys;
mod state;
mod tenants;
mod uploads;
mod versions;
mod writer;

use std::path::{Path, PathBuf};

use deadpool_sqlite::rusqlite::{self, Connection};
use deadpool_sqlite::{Config, Hook, HookError, Pool, Runtime};

use super::StoreError;

/// The schema, in order; `PRAGMA user_version` records how many are applied.
const MIGRATIONS: &[(&str, &str)] = &[
    ("001_tenants", include_str!("migrations/001_tenants.sql")),
    (
        "002_customers",
        include_str!("migrations/002_customers.sql"),
    ),
    (
        "003_components",
        include_str!("migrations/003_components.sql"),
    ),
    (
        "004_integrations",
        include_str!("migrations/004_integrations.sql"),
    ),
    (
        "005_instances",
        include_str!("migrations/005_instances.sql"),
    ),
    (
        "006_executions",
        include_str!("migrations/006_executions.sql"),
    ),
    ("007_state", include_str!("migrations/007_state.sql")),
    ("008_results", include_str!("migrations/008_results.sql")),
    ("009_queue", include_str!("migrations/009_queue.sql")),
    (
        "010_schedules",
        include_str!("migrations/010_schedules.sql"),
    ),
    (
        "011_component_compile",
        include_str!("migrations/011_component_compile.sql"),
    ),
    (
        "012_state_quota",
        include_str!("migrations/012_state_quota.sql"),
    ),
    (
        "013_crash_requeue",
        include_str!("migrations/013_crash_requeue.sql"),
    ),
    (
        "014_ingress_edges",
        include_str!("migrations/014_ingress_edges.sql"),
    ),
    ("015_oauth", include_str!("migrations/015_oauth.sql")),
    ("016_embed", include_str!("migrations/016_embed.sql")),
    (
        "017_component_uploads",
        include_str!("migrations/017_component_uploads.sql"),
    ),
];

/// Connections in the pool: SQLite serializes writers anyway; a few readers run
/// beside the writer thanks to WAL.
const POOL_SIZE: usize = 8;

/// The SQLite store. Cloning is cheap (the pool is shared).
#[derive(Clone)]
pub struct SqliteStore {
    pool: Pool,
    path: PathBuf,
    /// The execution paths' writes (see [`SqliteStore::write`]).
    writer: writer::Writer,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

fn backend(err: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(err.to_string())
}

/// Prepared statements each connection keeps (`prepare_cached`): rusqlite's default
/// of 16 is fewer than the statements of the webhook and queue paths together, and an
/// evicted statement is parsed and planned again on its next use.
const STATEMENT_CACHE: usize = 128;

/// Settings every connection needs: foreign keys are off by default in SQLite, and a
/// busy writer should make others wait rather than fail. `synchronous = NORMAL` in
/// WAL mode: a committed transaction survives a crash of the process (not a power
/// loss), without an fsync per commit. Temporary tables and indices (sorts) stay in
/// memory, and each connection caches up to 8 MiB of pages instead of 2 MiB, so
/// the hot tables' pages are read from SQLite's cache rather than the OS's.
fn configure(connection: &Connection) -> rusqlite::Result<()> {
    connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    connection.execute_batch(
        "PRAGMA foreign_keys = ON;
         PRAGMA busy_timeout = 10000;
         PRAGMA synchronous = NORMAL;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -8192;",
    )
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies pending
    /// migrations.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        // WAL is a property of the file: set it once, before the pool opens it.
        let setup_path = path.to_path_buf();
        tokio::task::spawn_blocking(move || -> rusqlite::Result<()> {
            let mut connection = Connection::open(&setup_path)?;
            connection.pragma_update(None, "journal_mode", "WAL")?;
            configure(&connection)?;
            migrate(&mut connection)
        })
        .await
        .map_err(backend)?
        .map_err(|err| StoreError::Backend(format!("opening {}: {err}", path.display())))?;
        let writer_path = path.to_path_buf();
        let writer = tokio::task::spawn_blocking(move || writer::Writer::start(&writer_path))
            .await
            .map_err(backend)??;

        Ok(SqliteStore {
            pool: pool(path, POOL_SIZE)?,
            writer,
            path: path.to_path_buf(),
        })
    }

    /// Runs `f` on a pooled connection on a blocking thread.
    pub(crate) async fn interact<F, T>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let connection = self.pool.get().await.map_err(backend)?;
        connection.interact(f).await.map_err(backend)?
    }

    /// Runs the write `f` on the store's writer (see `writer`): in a transaction,
    /// possibly shared with other writes; returns once it is committed. `f` must not
    /// begin or end transactions. Writes elsewhere (rarer: the API's) use the pool,
    /// meet SQLite's lock and wait for it through `busy_timeout`.
    pub(crate) async fn write<F, T>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        self.writer.write(f).await
    }
}

/// A pool of up to `size` connections to `path`, each configured by [`configure`].
fn pool(path: &Path, size: usize) -> Result<Pool, StoreError> {
    let mut config = Config::new(path);
    config.pool = Some(deadpool_sqlite::PoolConfig::new(size));
    config
        .builder(Runtime::Tokio1)
        .map_err(backend)?
        .post_create(Hook::async_fn(|object, _| {
            Box::pin(async move {
                object
                    .interact(|connection| configure(connection))
                    .await
                    .map_err(|err| HookError::Message(err.to_string().into()))?
                    .map_err(HookError::Backend)
            })
        }))
        .build()
        .map_err(backend)
}

fn migrate(connection: &mut Connection) -> rusqlite::Result<()> {
    let applied: i64 = connection.pragma_query_value(None, "user_version", |row| row.get(0))?;
    for (index, (name, sql)) in MIGRATIONS.iter().enumerate() {
        let number = index as i64 + 1;
        if number <= applied {
            continue;
        }
        let transaction = connection.transaction()?;
        transaction.execute_batch(sql)?;
        transaction.pragma_update(None, "user_version", number)?;
        transaction.commit()?;
        tracing::info!(migration = name, "applied store migration");
    }
    Ok(())
}

/// Maps a rusqlite error, turning constraint violations into conflicts.
pub(crate) fn sql(err: rusqlite::Error) -> StoreError {
    match &err {
        rusqlite::Error::SqliteFailure(failure, _)
            if failure.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            StoreError::Conflict(err.to_string())
        }
        _ => StoreError::Backend(err.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{SharedStateStore, TenantStore};

    #[tokio::test]
    async fn opens_migrates_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sluice.db");
        let store = SqliteStore::open(&path).await.unwrap();
        let tenant = store
            .create_tenant("Acme", "hash-1", "sk_abc")
            .await
            .unwrap();
        drop(store);
        let store = SqliteStore::open(&path).await.unwrap();
        let found = store.tenant_by_key("hash-1").await.unwrap().unwrap();
        assert_eq!(found, tenant);
        assert!(store.tenant_by_key("other").await.unwrap().is_none());
        let version: i64 = store
            .interact(|c| {
                c.pragma_query_value(None, "user_version", |row| row.get(0))
                    .map_err(sql)
            })
            .await
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
    }

    #[tokio::test]
    async fn state_compare_and_swap() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.db")).await.unwrap();
        let (t, ns, group) = ("t1", "instance:i1", "instance:i1");
        let quota = sluice_runtime::StateQuota::default();
        let cas = |expected: Option<&'static str>, new: Option<&'static str>| {
            let store = store.clone();
            async move {
                store
                    .state_compare_and_swap(t, ns, group, "k", expected, new, &quota)
                    .await
                    .unwrap()
                    .unwrap()
            }
        };
        assert!(cas(None, Some("1")).await);
        assert!(!cas(None, Some("2")).await);
        assert!(cas(Some("1"), Some("2")).await);
        assert_eq!(
            store.state_get(t, ns, "k").await.unwrap().as_deref(),
            Some("2")
        );
        assert_eq!(store.state_get("t2", ns, "k").await.unwrap(), None);
        store
            .state_set(t, "flow:i1:f", group, "a", "true", &quota)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(store.state_delete_prefix(t, "flow:i1:").await.unwrap(), 1);
        assert!(cas(Some("2"), None).await);
        assert!(!store.state_delete(t, ns, "k").await.unwrap());
    }
}

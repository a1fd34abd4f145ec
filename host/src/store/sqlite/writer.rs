//! The store's writer for the execution paths: one thread owning one connection, which
//! runs the writes sent to it, in arrival order, committing all the writes that
//! arrived while the previous commit ran in one transaction (group commit).
//!
//! Why: SQLite takes one writer at a time. With writers on the pool, each webhook's
//! writes waited for the lock in SQLite's busy handler (sleeping for milliseconds at a
//! time), paid a hop to the blocking pool per write while the lock sat idle, and paid
//! a commit each. Here the lock is held by one thread that goes from one write to the
//! next, a commit is shared by every write of a batch, and the connection's page
//! cache stays valid between transactions, since no other connection writes these
//! tables as often.
//!
//! Each write runs in a savepoint of the batch's transaction, so one that fails is
//! rolled back alone and answered with its error; the others are answered once the
//! batch is committed, never before: durability is that of a transaction of its own.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::mpsc;

use deadpool_sqlite::rusqlite::Connection;
use tokio::sync::oneshot;

use super::{backend, configure, sql};
use crate::store::StoreError;

/// At most this many writes share a transaction, so one batch's latency stays bounded.
const MAX_BATCH: usize = 64;

/// Answers a write whose savepoint was released, with the batch's commit result.
type Deliver = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// A write: runs on the writer's connection inside the batch's transaction; `None` if
/// it failed (and has been answered).
type Job = Box<dyn FnOnce(&Connection) -> Option<Deliver> + Send>;

/// The sending side; the thread ends when the last clone of it is dropped.
#[derive(Clone)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Opens the writer's connection to `path` and starts its thread.
    pub(crate) fn start(path: &Path) -> Result<Writer, StoreError> {
        let connection = Connection::open(path).map_err(sql)?;
        configure(&connection).map_err(sql)?;
        let (jobs, receiver) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("sluice-store-writer".into())
            .spawn(move || run(&connection, &receiver))
            .map_err(backend)?;
        Ok(Writer { jobs })
    }

    /// Runs `f` on the writer's connection, inside a transaction; returns once the
    /// transaction is committed. `f` must not begin or end transactions itself.
    pub(crate) async fn write<F, T>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let (answer, answered) = oneshot::channel::<Result<T, StoreError>>();
        let job: Job = Box::new(move |connection| match f(connection) {
            Ok(value) => Some(Box::new(move |committed: Result<(), StoreError>| {
                // The caller may have gone away (a cancelled request): nothing to do.
                let _ = answer.send(committed.map(|()| value));
            })),
            Err(err) => {
                let _ = answer.send(Err(err));
                None
            }
        });
        self.jobs
            .send(job)
            .map_err(|_| StoreError::Backend("the store's writer has stopped".into()))?;
        answered.await.map_err(|_| {
            StoreError::Backend("the store's writer dropped a write (see its log)".into())
        })?
    }
}

fn run(connection: &Connection, jobs: &mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        run_batch(connection, batch);
    }
}

/// Runs one batch in one IMMEDIATE transaction (the writes read before they write,
/// and must not find another writer between the two).
fn run_batch(connection: &Connection, batch: Vec<Job>) {
    if let Err(err) = connection.execute_batch("BEGIN IMMEDIATE") {
        // Dropping the jobs answers each of their callers with an error.
        tracing::error!(error = %err, writes = batch.len(), "the store's writer cannot begin a transaction");
        return;
    }
    let mut pending = Vec::with_capacity(batch.len());
    // A savepoint that cannot be closed leaves the transaction in doubt: the whole
    // batch is rolled back rather than committing half a write.
    let mut broken = None;
    for job in batch {
        if let Err(err) = savepoint(connection, "SAVEPOINT write") {
            tracing::error!(error = %err, "the store's writer cannot open a savepoint");
            broken = Some(err);
            break;
        }
        // A panicking write must not take the writer down with it: it is rolled back
        // and its caller sees its answer dropped.
        let delivered = catch_unwind(AssertUnwindSafe(|| job(connection))).unwrap_or_else(|_| {
            tracing::error!("a store write panicked; rolled back");
            None
        });
        let closed = match &delivered {
            Some(_) => savepoint(connection, "RELEASE write"),
            None => savepoint(connection, "ROLLBACK TO write")
                .and_then(|()| savepoint(connection, "RELEASE write")),
        };
        match (delivered, closed) {
            (Some(deliver), Ok(())) => pending.push(deliver),
            (_, Err(err)) => {
                tracing::error!(error = %err, "the store's writer cannot close a savepoint");
                broken = Some(err);
                break;
            }
            (None, Ok(())) => {}
        }
    }
    // Jobs not run (after a break) are dropped here: their callers get an error.
    let committed = match broken {
        Some(err) => Err(err),
        None => connection.execute_batch("COMMIT").map_err(sql),
    };
    if let Err(err) = &committed {
        tracing::error!(error = %err, "the store's writer did not commit a batch");
        if let Err(err) = connection.execute_batch("ROLLBACK") {
            tracing::error!(error = %err, "the store's writer cannot roll back");
        }
    }
    for deliver in pending {
        deliver(committed.clone());
    }
}

fn savepoint(connection: &Connection, statement: &str) -> Result<(), StoreError> {
    connection
        .prepare_cached(statement)
        .and_then(|mut statement| statement.execute([]))
        .map(drop)
        .map_err(sql)
}

#[cfg(test)]
mod tests {
    use super::super::SqliteStore;
    use crate::store::StoreError;

    fn count(connection: &deadpool_sqlite::rusqlite::Connection) -> Result<i64, StoreError> {
        connection
            .query_row("SELECT count(*) FROM t", [], |row| row.get(0))
            .map_err(super::sql)
    }

    #[tokio::test]
    async fn a_failing_write_is_rolled_back_alone_and_the_others_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let store = SqliteStore::open(&path).await.unwrap();
        store
            .write(|c| {
                c.execute_batch("CREATE TABLE t (x INTEGER)")
                    .map_err(super::sql)
            })
            .await
            .unwrap();
        // Sent together, so they are likely to share a batch; the outcome must be the
        // same whether they do or not.
        let insert = |x: i64| {
            let store = store.clone();
            async move {
                store
                    .write(move |c| {
                        c.execute("INSERT INTO t (x) VALUES (?1)", [x])
                            .map_err(super::sql)?;
                        Ok(())
                    })
                    .await
            }
        };
        let failing = store.write(|c| {
            c.execute("INSERT INTO t (x) VALUES (99)", [])
                .map_err(super::sql)?;
            Err::<(), _>(StoreError::Conflict("no".into()))
        });
        let (one, bad, two) = tokio::join!(insert(1), failing, insert(2));
        one.unwrap();
        two.unwrap();
        assert_eq!(bad, Err(StoreError::Conflict("no".into())));
        let rows: Vec<i64> = store
            .interact(|c| {
                let mut statement = c
                    .prepare("SELECT x FROM t ORDER BY x")
                    .map_err(super::sql)?;
                let rows = statement
                    .query_map([], |row| row.get(0))
                    .map_err(super::sql)?;
                rows.collect::<Result<_, _>>().map_err(super::sql)
            })
            .await
            .unwrap();
        assert_eq!(rows, [1, 2], "the failed write left nothing");

        // Committed means durable for another connection, and after reopening.
        drop(store);
        let store = SqliteStore::open(&path).await.unwrap();
        assert_eq!(store.interact(|c| count(c)).await.unwrap(), 2);
    }
}

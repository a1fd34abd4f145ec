//! [`SharedStateStore`] on SQLite. Every write runs in an immediate transaction that
//! reads the entry's old size and the usage counters, checks the quota, writes the
//! entry and updates the counters: SQLite's write lock makes concurrent executions
//! see a single winner for compare-and-swap and keeps the counters exact.

use async_trait::async_trait;
use deadpool_sqlite::rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use sluice_runtime::{StateDelta, StateQuota, StateStoreError, StateUsage, entry_size};

use super::{SqliteStore, sql};
use crate::store::state::{QuotaExceeded, SharedStateStore};
use crate::store::{StoreError, now_ms};

/// The `state_usage` group that holds a tenant's total.
const TENANT_TOTAL: &str = "";

fn usage(connection: &Connection, tenant: &str, group: &str) -> Result<StateUsage, StoreError> {
    let found: Option<(i64, i64)> = connection
        .query_row(
            "SELECT bytes, keys FROM state_usage WHERE tenant_id = ?1 AND quota_group = ?2",
            params![tenant, group],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()
        .map_err(sql)?;
    Ok(
        found.map_or_else(StateUsage::default, |(bytes, keys)| StateUsage {
            bytes: u64::try_from(bytes).unwrap_or(0),
            keys: u64::try_from(keys).unwrap_or(0),
        }),
    )
}

/// Adds `delta` to the counters of `group` and of the tenant's total.
fn account(
    connection: &Connection,
    tenant: &str,
    group: &str,
    delta: StateDelta,
) -> Result<(), StoreError> {
    for group in [group, TENANT_TOTAL] {
        connection
            .execute(
                "INSERT INTO state_usage (tenant_id, quota_group, bytes, keys) VALUES (?1, ?2, max(?3, 0), max(?4, 0))
                 ON CONFLICT (tenant_id, quota_group) DO UPDATE
                 SET bytes = max(bytes + ?3, 0), keys = max(keys + ?4, 0)",
                params![tenant, group, delta.bytes, delta.keys],
            )
            .map_err(sql)?;
    }
    Ok(())
}

/// The current value and size of an entry.
fn current(
    connection: &Connection,
    tenant: &str,
    namespace: &str,
    key: &str,
) -> Result<Option<(String, u64)>, StoreError> {
    connection
        .query_row(
            "SELECT value, size FROM state WHERE tenant_id = ?1 AND namespace = ?2 AND key = ?3",
            params![tenant, namespace, key],
            |row| Ok((row.get(0)?, row.get::<_, i64>(1)?)),
        )
        .optional()
        .map_err(sql)
        .map(|found| found.map(|(value, size)| (value, u64::try_from(size).unwrap_or(0))))
}

/// Replaces (`new` of `None`: deletes) an entry whose current size is `old_size`,
/// within `quota` when one is given, and keeps the counters in step. Must run inside a
/// transaction.
#[allow(clippy::too_many_arguments)]
fn write_entry(
    connection: &Connection,
    tenant: &str,
    namespace: &str,
    group: &str,
    key: &str,
    old_size: Option<u64>,
    new: Option<&str>,
    quota: Option<&StateQuota>,
) -> Result<Result<(), QuotaExceeded>, StoreError> {
    let new_size = new.map(|value| entry_size(key, value));
    let delta = StateDelta::replacing(old_size, new_size);
    if let Some(quota) = quota {
        let checked = quota.check(
            usage(connection, tenant, group)?,
            usage(connection, tenant, TENANT_TOTAL)?,
            delta,
        );
        if let Err(err) = checked {
            let message = match err {
                StateStoreError::QuotaExceeded(message) | StateStoreError::Unavailable(message) => {
                    message
                }
            };
            return Ok(Err(QuotaExceeded(message)));
        }
    }
    match (new, new_size) {
        (Some(value), Some(size)) => connection.execute(
            "INSERT INTO state (tenant_id, namespace, key, value, updated_ms, quota_group, size)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (tenant_id, namespace, key) DO UPDATE
             SET value = excluded.value, updated_ms = excluded.updated_ms, size = excluded.size",
            params![
                tenant,
                namespace,
                key,
                value,
                now_ms(),
                group,
                i64::try_from(size).unwrap_or(i64::MAX)
            ],
        ),
        _ => connection.execute(
            "DELETE FROM state WHERE tenant_id = ?1 AND namespace = ?2 AND key = ?3",
            params![tenant, namespace, key],
        ),
    }
    .map_err(sql)?;
    account(connection, tenant, group, delta)?;
    Ok(Ok(()))
}

#[async_trait]
impl SharedStateStore for SqliteStore {
    async fn state_get(
        &self,
        tenant: &str,
        namespace: &str,
        key: &str,
    ) -> Result<Option<String>, StoreError> {
        let (tenant, namespace, key) = (tenant.to_string(), namespace.to_string(), key.to_string());
        self.interact(move |connection| {
            connection
                .query_row(
                    "SELECT value FROM state WHERE tenant_id = ?1 AND namespace = ?2 AND key = ?3",
                    params![tenant, namespace, key],
                    |row| row.get(0),
                )
                .optional()
                .map_err(sql)
        })
        .await
    }

    async fn state_set(
        &self,
        tenant: &str,
        namespace: &str,
        group: &str,
        key: &str,
        value: &str,
        quota: &StateQuota,
    ) -> Result<Result<(), QuotaExceeded>, StoreError> {
        let (tenant, namespace, group, key, value) = (
            tenant.to_string(),
            namespace.to_string(),
            group.to_string(),
            key.to_string(),
            value.to_string(),
        );
        let quota = *quota;
        self.interact(move |connection| {
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql)?;
            let old_size: Option<u64> = transaction
                .query_row(
                    "SELECT size FROM state WHERE tenant_id = ?1 AND namespace = ?2 AND key = ?3",
                    params![tenant, namespace, key],
                    |row| row.get::<_, i64>(0),
                )
                .optional()
                .map_err(sql)?
                .map(|size| u64::try_from(size).unwrap_or(0));
            let written = write_entry(
                &transaction,
                &tenant,
                &namespace,
                &group,
                &key,
                old_size,
                Some(&value),
                Some(&quota),
            )?;
            if written.is_ok() {
                transaction.commit().map_err(sql)?;
            }
            Ok(written)
        })
        .await
    }

    async fn state_delete(
        &self,
        tenant: &str,
        namespace: &str,
        key: &str,
    ) -> Result<bool, StoreError> {
        let (tenant, namespace, key) = (tenant.to_string(), namespace.to_string(), key.to_string());
        self.interact(move |connection| {
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql)?;
            let found: Option<(String, i64)> = transaction
                .query_row(
                    "SELECT quota_group, size FROM state WHERE tenant_id = ?1 AND namespace = ?2 AND key = ?3",
                    params![tenant, namespace, key],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()
                .map_err(sql)?;
            let Some((group, size)) = found else {
                return Ok(false);
            };
            let old_size = Some(u64::try_from(size).unwrap_or(0));
            // A delete never passes a quota: no quota to check.
            let _ = write_entry(
                &transaction,
                &tenant,
                &namespace,
                &group,
                &key,
                old_size,
                None,
                None,
            )?;
            transaction.commit().map_err(sql)?;
            Ok(true)
        })
        .await
    }

    async fn state_compare_and_swap(
        &self,
        tenant: &str,
        namespace: &str,
        group: &str,
        key: &str,
        expected: Option<&str>,
        new: Option<&str>,
        quota: &StateQuota,
    ) -> Result<Result<bool, QuotaExceeded>, StoreError> {
        let (tenant, namespace, group, key) = (
            tenant.to_string(),
            namespace.to_string(),
            group.to_string(),
            key.to_string(),
        );
        let (expected, new) = (expected.map(str::to_string), new.map(str::to_string));
        let quota = *quota;
        self.interact(move |connection| {
            // IMMEDIATE takes the write lock before the read, so no other writer can
            // slip in between the comparison and the swap.
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql)?;
            let current = current(&transaction, &tenant, &namespace, &key)?;
            if current.as_ref().map(|(value, _)| value) != expected.as_ref() {
                return Ok(Ok(false));
            }
            let written = write_entry(
                &transaction,
                &tenant,
                &namespace,
                &group,
                &key,
                current.map(|(_, size)| size),
                new.as_deref(),
                Some(&quota),
            )?;
            match written {
                Ok(()) => {
                    transaction.commit().map_err(sql)?;
                    Ok(Ok(true))
                }
                Err(refused) => Ok(Err(refused)),
            }
        })
        .await
    }

    async fn state_delete_prefix(&self, tenant: &str, prefix: &str) -> Result<u64, StoreError> {
        let (tenant, prefix) = (tenant.to_string(), prefix.to_string());
        self.interact(move |connection| {
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql)?;
            // substr comparison, not LIKE: namespaces may contain `%` or `_`.
            let freed: Vec<(String, i64, i64)> = {
                let mut statement = transaction
                    .prepare(
                        "SELECT quota_group, SUM(size), COUNT(*) FROM state
                         WHERE tenant_id = ?1 AND substr(namespace, 1, length(?2)) = ?2
                         GROUP BY quota_group",
                    )
                    .map_err(sql)?;
                statement
                    .query_map(params![tenant, prefix], |row| {
                        Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                    })
                    .map_err(sql)?
                    .collect::<Result<_, _>>()
                    .map_err(sql)?
            };
            let deleted = transaction
                .execute(
                    "DELETE FROM state WHERE tenant_id = ?1 AND substr(namespace, 1, length(?2)) = ?2",
                    params![tenant, prefix],
                )
                .map_err(sql)?;
            for (group, bytes, keys) in freed {
                let delta = StateDelta {
                    bytes: -bytes,
                    keys: -keys,
                };
                account(&transaction, &tenant, &group, delta)?;
            }
            transaction
                .execute(
                    "DELETE FROM state_usage WHERE tenant_id = ?1 AND quota_group <> ?2 AND keys = 0",
                    params![tenant, TENANT_TOTAL],
                )
                .map_err(sql)?;
            transaction.commit().map_err(sql)?;
            Ok(deleted as u64)
        })
        .await
    }

    async fn state_usage(
        &self,
        tenant: &str,
        group: Option<&str>,
    ) -> Result<StateUsage, StoreError> {
        let (tenant, group) = (
            tenant.to_string(),
            group.unwrap_or(TENANT_TOTAL).to_string(),
        );
        self.interact(move |connection| usage(connection, &tenant, &group))
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// The counters equal what the table holds, recomputed from scratch.
    async fn recount(store: &SqliteStore, tenant: &str) -> StateUsage {
        let tenant = tenant.to_string();
        store
            .interact(move |connection| {
                connection
                    .query_row(
                        "SELECT COALESCE(SUM(length(CAST(key AS BLOB)) + length(CAST(value AS BLOB))), 0), COUNT(*)
                         FROM state WHERE tenant_id = ?1",
                        params![tenant],
                        |row| {
                            Ok(StateUsage {
                                bytes: row.get::<_, i64>(0)? as u64,
                                keys: row.get::<_, i64>(1)? as u64,
                            })
                        },
                    )
                    .map_err(sql)
            })
            .await
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn usage_stays_exact_under_concurrent_writers() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("s.db")).await.unwrap());
        let quota = StateQuota {
            instance_bytes: 4000,
            instance_keys: 40,
            ..StateQuota::default()
        };
        let group = "instance:i1";
        let mut tasks = Vec::new();
        for writer in 0..8u64 {
            let store = Arc::clone(&store);
            tasks.push(tokio::spawn(async move {
                let mut refused = 0;
                for round in 0..40u64 {
                    // Overlapping keys across writers, values of varying size, some
                    // deletes and some compare-and-swaps.
                    let key = format!("k{}", (writer * 7 + round) % 50);
                    let namespace = if round % 2 == 0 {
                        "instance:i1"
                    } else {
                        "flow:i1:f"
                    };
                    let value = "7".repeat(((writer + round) % 90 + 1) as usize);
                    let outcome = match round % 5 {
                        3 => {
                            store.state_delete("t", namespace, &key).await.unwrap();
                            Ok(())
                        }
                        4 => store
                            .state_compare_and_swap(
                                "t",
                                namespace,
                                group,
                                &key,
                                None,
                                Some(&value),
                                &quota,
                            )
                            .await
                            .unwrap()
                            .map(|_| ()),
                        _ => store
                            .state_set("t", namespace, group, &key, &value, &quota)
                            .await
                            .unwrap(),
                    };
                    refused += u32::from(outcome.is_err());
                }
                refused
            }));
        }
        let mut refused = 0;
        for task in tasks {
            refused += task.await.unwrap();
        }
        let counted = store.state_usage("t", Some(group)).await.unwrap();
        assert_eq!(counted, recount(&store, "t").await);
        assert_eq!(store.state_usage("t", None).await.unwrap(), counted);
        assert!(counted.bytes <= quota.instance_bytes && counted.keys <= quota.instance_keys);
        assert!(
            refused > 0,
            "the quota was never reached; the test proves nothing"
        );
        // Removing the instance's namespaces frees everything.
        store.state_delete_prefix("t", "flow:i1:").await.unwrap();
        store.state_delete_prefix("t", "instance:i1").await.unwrap();
        assert_eq!(
            store.state_usage("t", None).await.unwrap(),
            StateUsage::default()
        );
        assert_eq!(
            store.state_usage("t", Some(group)).await.unwrap(),
            StateUsage::default()
        );
    }

    #[tokio::test]
    async fn migration_backfills_usage_of_existing_state() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let store = SqliteStore::open(&path).await.unwrap();
        // Rows as a store before the quota wrote them: no group, no size, no usage.
        store
            .interact(|connection| {
                connection
                    .execute_batch(
                        "INSERT INTO state (tenant_id, namespace, key, value, updated_ms) VALUES
                            ('t', 'flow:i1:f', 'a', '\"xyz\"', 0),
                            ('t', 'instance:i1', 'bb', '1', 0),
                            ('t', 'integration:int', 'c', 'true', 0);
                         DELETE FROM state_usage;",
                    )
                    .map_err(sql)?;
                let migration = include_str!("migrations/012_state_quota.sql");
                // Re-run only the backfill statements of the migration.
                let backfill = migration
                    .split(';')
                    .filter(|statement| {
                        statement.contains("UPDATE state SET")
                            || statement.contains("INSERT INTO state_usage")
                    })
                    .collect::<Vec<_>>()
                    .join(";");
                connection.execute_batch(&backfill).map_err(sql)
            })
            .await
            .unwrap();
        assert_eq!(
            store.state_usage("t", Some("instance:i1")).await.unwrap(),
            StateUsage {
                bytes: 1 + 5 + 2 + 1,
                keys: 2
            }
        );
        assert_eq!(
            store
                .state_usage("t", Some("integration:int"))
                .await
                .unwrap(),
            StateUsage { bytes: 5, keys: 1 }
        );
        assert_eq!(
            store.state_usage("t", None).await.unwrap(),
            StateUsage { bytes: 14, keys: 3 }
        );
    }
}

//! [`SharedStateStore`] on SQLite: compare-and-swap inside an immediate transaction,
//! so concurrent executions see a single winner.

use async_trait::async_trait;
use deadpool_sqlite::rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::{SqliteStore, sql};
use crate::store::state::SharedStateStore;
use crate::store::{StoreError, now_ms};

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
        key: &str,
        value: &str,
    ) -> Result<(), StoreError> {
        let (tenant, namespace, key, value) = (
            tenant.to_string(),
            namespace.to_string(),
            key.to_string(),
            value.to_string(),
        );
        self.interact(move |connection| {
            connection
                .execute(
                    "INSERT INTO state (tenant_id, namespace, key, value, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (tenant_id, namespace, key) DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms",
                    params![tenant, namespace, key, value, now_ms()],
                )
                .map_err(sql)?;
            Ok(())
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
            let deleted = connection
                .execute(
                    "DELETE FROM state WHERE tenant_id = ?1 AND namespace = ?2 AND key = ?3",
                    params![tenant, namespace, key],
                )
                .map_err(sql)?;
            Ok(deleted > 0)
        })
        .await
    }

    async fn state_compare_and_swap(
        &self,
        tenant: &str,
        namespace: &str,
        key: &str,
        expected: Option<&str>,
        new: Option<&str>,
    ) -> Result<bool, StoreError> {
        let (tenant, namespace, key) = (tenant.to_string(), namespace.to_string(), key.to_string());
        let (expected, new) = (expected.map(str::to_string), new.map(str::to_string));
        self.interact(move |connection| {
            // IMMEDIATE takes the write lock before the read, so no other writer can
            // slip in between the comparison and the swap.
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql)?;
            let current: Option<String> = transaction
                .query_row(
                    "SELECT value FROM state WHERE tenant_id = ?1 AND namespace = ?2 AND key = ?3",
                    params![tenant, namespace, key],
                    |row| row.get(0),
                )
                .optional()
                .map_err(sql)?;
            if current != expected {
                return Ok(false);
            }
            match new {
                Some(value) => transaction.execute(
                    "INSERT INTO state (tenant_id, namespace, key, value, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (tenant_id, namespace, key) DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms",
                    params![tenant, namespace, key, value, now_ms()],
                ),
                None => transaction.execute(
                    "DELETE FROM state WHERE tenant_id = ?1 AND namespace = ?2 AND key = ?3",
                    params![tenant, namespace, key],
                ),
            }
            .map_err(sql)?;
            transaction.commit().map_err(sql)?;
            Ok(true)
        })
        .await
    }

    async fn state_delete_prefix(&self, tenant: &str, prefix: &str) -> Result<u64, StoreError> {
        let (tenant, prefix) = (tenant.to_string(), prefix.to_string());
        self.interact(move |connection| {
            // substr comparison, not LIKE: namespaces may contain `%` or `_`.
            let deleted = connection
                .execute(
                    "DELETE FROM state WHERE tenant_id = ?1 AND substr(namespace, 1, length(?2)) = ?2",
                    params![tenant, prefix],
                )
                .map_err(sql)?;
            Ok(deleted as u64)
        })
        .await
    }
}

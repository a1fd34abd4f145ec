//! [`TenantStore`] on SQLite.

use async_trait::async_trait;
use deadpool_sqlite::rusqlite::{OptionalExtension, params};

use super::{SqliteStore, sql};
use crate::store::tenants::{Tenant, TenantStore};
use crate::store::{StoreError, new_id, now_ms};

#[async_trait]
impl TenantStore for SqliteStore {
    async fn create_tenant(
        &self,
        name: &str,
        key_hash: &str,
        key_prefix: &str,
    ) -> Result<Tenant, StoreError> {
        let tenant = Tenant {
            id: new_id(),
            name: name.to_string(),
            created_ms: now_ms(),
        };
        let (row, key_hash, key_prefix) =
            (tenant.clone(), key_hash.to_string(), key_prefix.to_string());
        self.interact(move |connection| {
            let transaction = connection.transaction().map_err(sql)?;
            transaction
                .execute(
                    "INSERT INTO tenants (id, name, created_ms) VALUES (?1, ?2, ?3)",
                    params![row.id, row.name, row.created_ms],
                )
                .map_err(sql)?;
            transaction
                .execute(
                    "INSERT INTO api_keys (key_hash, tenant_id, prefix, created_ms) VALUES (?1, ?2, ?3, ?4)",
                    params![key_hash, row.id, key_prefix, row.created_ms],
                )
                .map_err(sql)?;
            transaction.commit().map_err(sql)
        })
        .await?;
        Ok(tenant)
    }

    async fn add_api_key(
        &self,
        tenant_id: &str,
        key_hash: &str,
        key_prefix: &str,
    ) -> Result<(), StoreError> {
        let (tenant_id, key_hash, key_prefix) = (
            tenant_id.to_string(),
            key_hash.to_string(),
            key_prefix.to_string(),
        );
        self.interact(move |connection| {
            let exists: Option<String> = connection
                .query_row("SELECT id FROM tenants WHERE id = ?1", [&tenant_id], |row| row.get(0))
                .optional()
                .map_err(sql)?;
            if exists.is_none() {
                return Err(StoreError::NotFound(format!("tenant `{tenant_id}`")));
            }
            connection
                .execute(
                    "INSERT INTO api_keys (key_hash, tenant_id, prefix, created_ms) VALUES (?1, ?2, ?3, ?4)",
                    params![key_hash, tenant_id, key_prefix, now_ms()],
                )
                .map_err(sql)?;
            Ok(())
        })
        .await
    }

    async fn get_tenant(&self, id: &str) -> Result<Option<Tenant>, StoreError> {
        let id = id.to_string();
        self.interact(move |connection| {
            connection
                .query_row(
                    "SELECT id, name, created_ms FROM tenants WHERE id = ?1",
                    [id],
                    |row| {
                        Ok(Tenant {
                            id: row.get(0)?,
                            name: row.get(1)?,
                            created_ms: row.get(2)?,
                        })
                    },
                )
                .optional()
                .map_err(sql)
        })
        .await
    }

    async fn tenant_by_key(&self, key_hash: &str) -> Result<Option<Tenant>, StoreError> {
        let key_hash = key_hash.to_string();
        self.interact(move |connection| {
            connection
                .query_row(
                    "SELECT t.id, t.name, t.created_ms FROM api_keys k JOIN tenants t ON t.id = k.tenant_id
                     WHERE k.key_hash = ?1",
                    [key_hash],
                    |row| {
                        Ok(Tenant {
                            id: row.get(0)?,
                            name: row.get(1)?,
                            created_ms: row.get(2)?,
                        })
                    },
                )
                .optional()
                .map_err(sql)
        })
        .await
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        self.interact(|connection| {
            let mut statement = connection
                .prepare("SELECT id, name, created_ms FROM tenants ORDER BY created_ms")
                .map_err(sql)?;
            let rows = statement
                .query_map([], |row| {
                    Ok(Tenant {
                        id: row.get(0)?,
                        name: row.get(1)?,
                        created_ms: row.get(2)?,
                    })
                })
                .map_err(sql)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(sql)
        })
        .await
    }
}

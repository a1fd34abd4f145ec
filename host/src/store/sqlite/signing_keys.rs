//! [`SigningKeyStore`] on SQLite. The active-key cap and the one-active-copy rule are
//! checked in the insert's own IMMEDIATE transaction (the latter also by a partial
//! unique index), so two concurrent registrations cannot both pass.

use async_trait::async_trait;
use deadpool_sqlite::rusqlite::{
    self, Connection, OptionalExtension, Row, TransactionBehavior, params,
};

use super::{SqliteStore, sql};
use crate::store::signing_keys::{MAX_ACTIVE_KEYS, NewSigningKey, SigningKey, SigningKeyStore};
use crate::store::{StoreError, new_id, now_ms};

const COLUMNS: &str = "id, label, public_key_pem, fingerprint, created_ms, deactivated_ms";

fn signing_key(row: &Row<'_>) -> rusqlite::Result<SigningKey> {
    Ok(SigningKey {
        id: row.get(0)?,
        label: row.get(1)?,
        public_key_pem: row.get(2)?,
        fingerprint: row.get(3)?,
        created_ms: row.get(4)?,
        deactivated_ms: row.get(5)?,
    })
}

fn select(
    connection: &Connection,
    tenant: &str,
    active_only: bool,
) -> Result<Vec<SigningKey>, StoreError> {
    let mut statement = connection
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM embed_signing_keys
             WHERE tenant_id = ?1 AND (?2 = 0 OR deactivated_ms IS NULL)
             ORDER BY created_ms, id"
        ))
        .map_err(sql)?;
    let rows = statement
        .query_map(params![tenant, active_only], signing_key)
        .map_err(sql)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(sql)
}

#[async_trait]
impl SigningKeyStore for SqliteStore {
    async fn add_signing_key(
        &self,
        tenant: &str,
        key: NewSigningKey,
    ) -> Result<SigningKey, StoreError> {
        let row = SigningKey {
            id: new_id(),
            label: key.label,
            public_key_pem: key.public_key_pem,
            fingerprint: key.fingerprint,
            created_ms: now_ms(),
            deactivated_ms: None,
        };
        let (tenant, inserted) = (tenant.to_string(), row.clone());
        self.interact(move |connection| {
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql)?;
            let active = select(&transaction, &tenant, true)?;
            if let Some(same) = active
                .iter()
                .find(|key| key.fingerprint == inserted.fingerprint)
            {
                return Err(StoreError::Conflict(format!(
                    "this key is already registered and active, as signing key `{}`",
                    same.id
                )));
            }
            if active.len() >= MAX_ACTIVE_KEYS {
                return Err(StoreError::Conflict(format!(
                    "the tenant already has {MAX_ACTIVE_KEYS} active signing keys, the most \
                     allowed; deactivate one first"
                )));
            }
            transaction
                .execute(
                    &format!(
                        "INSERT INTO embed_signing_keys (tenant_id, {COLUMNS})
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL)"
                    ),
                    params![
                        tenant,
                        inserted.id,
                        inserted.label,
                        inserted.public_key_pem,
                        inserted.fingerprint,
                        inserted.created_ms
                    ],
                )
                .map_err(sql)?;
            transaction.commit().map_err(sql)
        })
        .await?;
        Ok(row)
    }

    async fn list_signing_keys(&self, tenant: &str) -> Result<Vec<SigningKey>, StoreError> {
        let tenant = tenant.to_string();
        self.interact(move |connection| select(connection, &tenant, false))
            .await
    }

    async fn active_signing_keys(&self, tenant: &str) -> Result<Vec<SigningKey>, StoreError> {
        let tenant = tenant.to_string();
        self.interact(move |connection| select(connection, &tenant, true))
            .await
    }

    async fn deactivate_signing_key(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<SigningKey, StoreError> {
        let (tenant, id) = (tenant.to_string(), id.to_string());
        self.interact(move |connection| {
            // COALESCE: deactivating again keeps the first time.
            connection
                .execute(
                    "UPDATE embed_signing_keys SET deactivated_ms = COALESCE(deactivated_ms, ?3)
                     WHERE tenant_id = ?1 AND id = ?2",
                    params![tenant, id, now_ms()],
                )
                .map_err(sql)?;
            connection
                .query_row(
                    &format!(
                        "SELECT {COLUMNS} FROM embed_signing_keys WHERE tenant_id = ?1 AND id = ?2"
                    ),
                    params![tenant, id],
                    signing_key,
                )
                .optional()
                .map_err(sql)?
                .ok_or_else(|| StoreError::NotFound(format!("signing key `{id}`")))
        })
        .await
    }
}

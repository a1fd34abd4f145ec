//! [`IntegrationStore`] on SQLite. A publish checks its pins and takes the next
//! version number in one IMMEDIATE transaction, serialized with component deletes.

use std::collections::BTreeMap;

use async_trait::async_trait;
use deadpool_sqlite::rusqlite::{self, OptionalExtension, Row, TransactionBehavior, params};

use super::versions::{self, Versioned};
use super::{SqliteStore, sql};
use crate::store::integrations::{
    IntegrationStore, IntegrationSummary, IntegrationVersion, NewIntegrationVersion, Pin,
};
use crate::store::{StoreError, now_ms};

const COLUMNS: &str = "key, version, definition, definition_hash, pins, created_ms";

impl Versioned for IntegrationVersion {
    const TABLE: &'static str = "integration_versions";
    const COLUMNS: &'static str = COLUMNS;

    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        let pins: String = row.get(4)?;
        let pins: BTreeMap<String, Pin> = serde_json::from_str(&pins).map_err(|err| {
            rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, Box::new(err))
        })?;
        Ok(IntegrationVersion {
            key: row.get(0)?,
            version: row.get(1)?,
            definition: row.get(2)?,
            definition_hash: row.get(3)?,
            pins,
            created_ms: row.get(5)?,
        })
    }
}

#[async_trait]
impl IntegrationStore for SqliteStore {
    async fn put_integration_version(
        &self,
        tenant: &str,
        new: NewIntegrationVersion,
    ) -> Result<(IntegrationVersion, bool), StoreError> {
        let tenant = tenant.to_string();
        let pins_json =
            serde_json::to_string(&new.pins).map_err(|err| StoreError::Backend(err.to_string()))?;
        self.interact(move |connection| {
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql)?;
            if let Some(existing) = versions::find(
                &transaction,
                &tenant,
                &new.key,
                "definition_hash",
                &new.definition_hash,
            )? {
                return Ok((existing, false));
            }
            for (component, pin) in &new.pins {
                let found: Option<i64> = transaction
                    .query_row(
                        "SELECT 1 FROM component_versions
                         WHERE tenant_id = ?1 AND key = ?2 AND version = ?3 AND hash = ?4",
                        params![tenant, component, pin.version, pin.hash],
                        |row| row.get(0),
                    )
                    .optional()
                    .map_err(sql)?;
                if found.is_none() {
                    return Err(StoreError::Conflict(format!(
                        "component `{component}` version {} was deleted while the definition \
                         was being published; publish it again",
                        pin.version
                    )));
                }
            }
            let version: i64 = transaction
                .query_row(
                    "SELECT COALESCE(MAX(version), 0) + 1 FROM integration_versions
                     WHERE tenant_id = ?1 AND key = ?2",
                    params![tenant, new.key],
                    |row| row.get(0),
                )
                .map_err(sql)?;
            let row = IntegrationVersion {
                key: new.key,
                version,
                definition: new.definition,
                definition_hash: new.definition_hash,
                pins: new.pins,
                created_ms: now_ms(),
            };
            transaction
                .execute(
                    &format!(
                        "INSERT INTO integration_versions (tenant_id, {COLUMNS})
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                    ),
                    params![
                        tenant,
                        row.key,
                        row.version,
                        row.definition,
                        row.definition_hash,
                        pins_json,
                        row.created_ms
                    ],
                )
                .map_err(sql)?;
            transaction.commit().map_err(sql)?;
            Ok((row, true))
        })
        .await
    }

    async fn list_integrations(&self, tenant: &str) -> Result<Vec<IntegrationSummary>, StoreError> {
        let tenant = tenant.to_string();
        self.interact(move |connection| {
            let latest = versions::latest(connection, &tenant)?;
            Ok(latest
                .into_iter()
                .map(|(latest, versions)| IntegrationSummary { latest, versions })
                .collect())
        })
        .await
    }

    async fn integration_versions(
        &self,
        tenant: &str,
        key: &str,
    ) -> Result<Vec<IntegrationVersion>, StoreError> {
        let (tenant, key) = (tenant.to_string(), key.to_string());
        self.interact(move |connection| versions::all(connection, &tenant, &key))
            .await
    }

    async fn integration_version(
        &self,
        tenant: &str,
        key: &str,
        version: i64,
    ) -> Result<Option<IntegrationVersion>, StoreError> {
        let (tenant, key) = (tenant.to_string(), key.to_string());
        self.interact(move |connection| {
            versions::find(connection, &tenant, &key, "version", &version)
        })
        .await
    }
}

//! [`EmbedSettingsStore`] on SQLite: one row per tenant, its origins as a JSON array.

use async_trait::async_trait;
use deadpool_sqlite::rusqlite::{self, OptionalExtension, params};

use super::{SqliteStore, sql};
use crate::store::embed_settings::{EmbedSettings, EmbedSettingsStore};
use crate::store::{StoreError, now_ms};

#[async_trait]
impl EmbedSettingsStore for SqliteStore {
    async fn embed_settings(&self, tenant: &str) -> Result<Option<EmbedSettings>, StoreError> {
        let tenant = tenant.to_string();
        self.interact(move |connection| {
            connection
                .query_row(
                    "SELECT frame_ancestors, oauth_success_redirect, oauth_failure_redirect,
                            updated_ms
                     FROM embed_settings WHERE tenant_id = ?1",
                    [tenant],
                    |row| {
                        let origins: String = row.get(0)?;
                        let frame_ancestors = serde_json::from_str(&origins).map_err(|err| {
                            rusqlite::Error::FromSqlConversionFailure(
                                0,
                                rusqlite::types::Type::Text,
                                Box::new(err),
                            )
                        })?;
                        Ok(EmbedSettings {
                            frame_ancestors,
                            oauth_success_redirect: row.get(1)?,
                            oauth_failure_redirect: row.get(2)?,
                            updated_ms: row.get(3)?,
                        })
                    },
                )
                .optional()
                .map_err(sql)
        })
        .await
    }

    async fn put_embed_settings(
        &self,
        tenant: &str,
        settings: EmbedSettings,
    ) -> Result<EmbedSettings, StoreError> {
        let stored = EmbedSettings {
            updated_ms: now_ms(),
            ..settings
        };
        let origins = serde_json::to_string(&stored.frame_ancestors)
            .map_err(|err| StoreError::Backend(err.to_string()))?;
        let (tenant, row) = (tenant.to_string(), stored.clone());
        self.interact(move |connection| {
            connection
                .execute(
                    "INSERT INTO embed_settings (tenant_id, frame_ancestors,
                         oauth_success_redirect, oauth_failure_redirect, updated_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (tenant_id) DO UPDATE SET
                         frame_ancestors = excluded.frame_ancestors,
                         oauth_success_redirect = excluded.oauth_success_redirect,
                         oauth_failure_redirect = excluded.oauth_failure_redirect,
                         updated_ms = excluded.updated_ms",
                    params![
                        tenant,
                        origins,
                        row.oauth_success_redirect,
                        row.oauth_failure_redirect,
                        row.updated_ms
                    ],
                )
                .map_err(sql)?;
            Ok(())
        })
        .await?;
        Ok(stored)
    }
}

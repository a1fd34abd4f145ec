//! [`OAuthStore`] on SQLite. The refresh lease is a conditional `UPDATE` of the
//! connection's row, not a held lock, so no pooled connection waits on an HTTP call.

use async_trait::async_trait;
use deadpool_sqlite::rusqlite::{self, OptionalExtension, Row, params};

use super::{SqliteStore, sql};
use crate::store::StoreError;
use crate::store::oauth::{
    ConnectionId, ConnectionTemplate, OAuthConnection, OAuthStatus, OAuthStore,
    PendingAuthorization,
};

const COLUMNS: &str = "tenant_id, instance_id, connection_key, status, status_detail, sealed_grant,
     expires_at_ms, refresh_due_ms, refreshed_ms, updated_ms";

fn connection(row: &Row<'_>) -> rusqlite::Result<(OAuthConnection, String)> {
    Ok((
        OAuthConnection {
            tenant_id: row.get(0)?,
            instance_id: row.get(1)?,
            connection_key: row.get(2)?,
            status: OAuthStatus::Active,
            status_detail: row.get(4)?,
            sealed_grant: row.get(5)?,
            expires_at_ms: row.get(6)?,
            refresh_due_ms: row.get(7)?,
            refreshed_ms: row.get(8)?,
            updated_ms: row.get(9)?,
        },
        row.get(3)?,
    ))
}

fn with_status(
    (mut connection, status): (OAuthConnection, String),
) -> Result<OAuthConnection, StoreError> {
    connection.status = OAuthStatus::parse(&status)?;
    Ok(connection)
}

fn template(row: &Row<'_>) -> rusqlite::Result<(ConnectionTemplate, String)> {
    Ok((
        ConnectionTemplate {
            tenant_id: row.get(0)?,
            component_key: row.get(1)?,
            connection_key: row.get(2)?,
            sealed_fields: row.get(3)?,
            field_names: Vec::new(),
            created_ms: row.get(5)?,
        },
        row.get(4)?,
    ))
}

fn with_names(
    (mut template, names): (ConnectionTemplate, String),
) -> Result<ConnectionTemplate, StoreError> {
    template.field_names = serde_json::from_str(&names)
        .map_err(|err| StoreError::Backend(format!("template field names: {err}")))?;
    Ok(template)
}

const TEMPLATE_COLUMNS: &str =
    "tenant_id, component_key, connection_key, sealed_fields, field_names, created_ms";

#[async_trait]
impl OAuthStore for SqliteStore {
    async fn put_pending_authorization(
        &self,
        pending: &PendingAuthorization,
    ) -> Result<(), StoreError> {
        let pending = pending.clone();
        self.interact(move |connection| {
            // Expired authorizations nobody came back for go with each new one.
            connection
                .execute(
                    "DELETE FROM oauth_pending WHERE expires_ms < ?1",
                    params![crate::store::now_ms()],
                )
                .map_err(sql)?;
            connection
                .execute(
                    "INSERT INTO oauth_pending (id, tenant_id, customer_id, instance_id,
                     connection_key, sealed_verifier, popup, expires_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        pending.id,
                        pending.tenant_id,
                        pending.customer_id,
                        pending.instance_id,
                        pending.connection_key,
                        pending.sealed_verifier,
                        pending.popup,
                        pending.expires_ms
                    ],
                )
                .map_err(sql)?;
            Ok(())
        })
        .await
    }

    async fn take_pending_authorization(
        &self,
        id: &str,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        let id = id.to_string();
        self.interact(move |connection| {
            connection
                .query_row(
                    "DELETE FROM oauth_pending WHERE id = ?1
                     RETURNING id, tenant_id, customer_id, instance_id, connection_key,
                               sealed_verifier, popup, expires_ms",
                    params![id],
                    |row| {
                        Ok(PendingAuthorization {
                            id: row.get(0)?,
                            tenant_id: row.get(1)?,
                            customer_id: row.get(2)?,
                            instance_id: row.get(3)?,
                            connection_key: row.get(4)?,
                            sealed_verifier: row.get(5)?,
                            popup: row.get(6)?,
                            expires_ms: row.get(7)?,
                        })
                    },
                )
                .optional()
                .map_err(sql)
        })
        .await
    }

    async fn oauth_connection(
        &self,
        tenant: &str,
        instance: &str,
        key: &str,
    ) -> Result<Option<OAuthConnection>, StoreError> {
        let (tenant, instance, key) = (tenant.to_string(), instance.to_string(), key.to_string());
        self.interact(move |connection_| {
            connection_
                .query_row(
                    &format!(
                        "SELECT {COLUMNS} FROM oauth_connections
                         WHERE tenant_id = ?1 AND instance_id = ?2 AND connection_key = ?3"
                    ),
                    params![tenant, instance, key],
                    connection,
                )
                .optional()
                .map_err(sql)?
                .map(with_status)
                .transpose()
        })
        .await
    }

    async fn oauth_connections_of(
        &self,
        tenant: &str,
        instance: &str,
    ) -> Result<Vec<OAuthConnection>, StoreError> {
        let (tenant, instance) = (tenant.to_string(), instance.to_string());
        self.interact(move |connection_| {
            let mut statement = connection_
                .prepare(&format!(
                    "SELECT {COLUMNS} FROM oauth_connections
                     WHERE tenant_id = ?1 AND instance_id = ?2 ORDER BY connection_key"
                ))
                .map_err(sql)?;
            let rows = statement
                .query_map(params![tenant, instance], connection)
                .map_err(sql)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sql)?;
            rows.into_iter().map(with_status).collect()
        })
        .await
    }

    async fn save_oauth_connection(&self, connection: &OAuthConnection) -> Result<(), StoreError> {
        let row = connection.clone();
        self.interact(move |connection| {
            connection
                .execute(
                    &format!(
                        "INSERT OR REPLACE INTO oauth_connections ({COLUMNS}, lease_owner, lease_until_ms)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, NULL, NULL)"
                    ),
                    params![
                        row.tenant_id,
                        row.instance_id,
                        row.connection_key,
                        row.status.as_str(),
                        row.status_detail,
                        row.sealed_grant,
                        row.expires_at_ms,
                        row.refresh_due_ms,
                        row.refreshed_ms,
                        row.updated_ms
                    ],
                )
                .map_err(sql)?;
            Ok(())
        })
        .await
    }

    async fn lease_oauth_connection(
        &self,
        tenant: &str,
        instance: &str,
        key: &str,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        let (tenant, instance, key, owner) = (
            tenant.to_string(),
            instance.to_string(),
            key.to_string(),
            owner.to_string(),
        );
        self.interact(move |connection| {
            let changed = connection
                .execute(
                    "UPDATE oauth_connections SET lease_owner = ?4, lease_until_ms = ?6
                     WHERE tenant_id = ?1 AND instance_id = ?2 AND connection_key = ?3
                       AND (lease_until_ms IS NULL OR lease_until_ms < ?5 OR lease_owner = ?4)",
                    params![tenant, instance, key, owner, now_ms, until_ms],
                )
                .map_err(sql)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn finish_oauth_refresh(
        &self,
        connection: &OAuthConnection,
        owner: &str,
    ) -> Result<bool, StoreError> {
        let (row, owner) = (connection.clone(), owner.to_string());
        self.interact(move |connection| {
            let changed = connection
                .execute(
                    "UPDATE oauth_connections SET status = ?4, status_detail = ?5,
                        sealed_grant = ?6, expires_at_ms = ?7, refresh_due_ms = ?8,
                        refreshed_ms = ?9, updated_ms = ?10,
                        lease_owner = NULL, lease_until_ms = NULL
                     WHERE tenant_id = ?1 AND instance_id = ?2 AND connection_key = ?3
                       AND lease_owner = ?11",
                    params![
                        row.tenant_id,
                        row.instance_id,
                        row.connection_key,
                        row.status.as_str(),
                        row.status_detail,
                        row.sealed_grant,
                        row.expires_at_ms,
                        row.refresh_due_ms,
                        row.refreshed_ms,
                        row.updated_ms,
                        owner
                    ],
                )
                .map_err(sql)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn release_oauth_lease(
        &self,
        tenant: &str,
        instance: &str,
        key: &str,
        owner: &str,
    ) -> Result<(), StoreError> {
        let (tenant, instance, key, owner) = (
            tenant.to_string(),
            instance.to_string(),
            key.to_string(),
            owner.to_string(),
        );
        self.interact(move |connection| {
            connection
                .execute(
                    "UPDATE oauth_connections SET lease_owner = NULL, lease_until_ms = NULL
                     WHERE tenant_id = ?1 AND instance_id = ?2 AND connection_key = ?3
                       AND lease_owner = ?4",
                    params![tenant, instance, key, owner],
                )
                .map_err(sql)?;
            Ok(())
        })
        .await
    }

    async fn due_oauth_connections(
        &self,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<ConnectionId>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.interact(move |connection| {
            let mut statement = connection
                .prepare(
                    "SELECT tenant_id, instance_id, connection_key FROM oauth_connections
                     WHERE status = 'active' AND refresh_due_ms IS NOT NULL
                       AND refresh_due_ms <= ?1
                       AND (lease_until_ms IS NULL OR lease_until_ms < ?1)
                     ORDER BY refresh_due_ms LIMIT ?2",
                )
                .map_err(sql)?;
            statement
                .query_map(params![now_ms, limit], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                })
                .map_err(sql)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sql)
        })
        .await
    }

    async fn delete_oauth_connection(
        &self,
        tenant: &str,
        instance: &str,
        key: &str,
    ) -> Result<(), StoreError> {
        let (tenant, instance, key) = (tenant.to_string(), instance.to_string(), key.to_string());
        self.interact(move |connection| {
            connection
                .execute(
                    "DELETE FROM oauth_connections
                     WHERE tenant_id = ?1 AND instance_id = ?2 AND connection_key = ?3",
                    params![tenant, instance, key],
                )
                .map_err(sql)?;
            Ok(())
        })
        .await
    }

    async fn create_connection_template(
        &self,
        template: &ConnectionTemplate,
    ) -> Result<(), StoreError> {
        let template = template.clone();
        let names = serde_json::to_string(&template.field_names)
            .map_err(|err| StoreError::Backend(err.to_string()))?;
        self.interact(move |connection| {
            connection
                .execute(
                    &format!(
                        "INSERT INTO connection_templates ({TEMPLATE_COLUMNS})
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
                    ),
                    params![
                        template.tenant_id,
                        template.component_key,
                        template.connection_key,
                        template.sealed_fields,
                        names,
                        template.created_ms
                    ],
                )
                .map_err(|err| match sql(err) {
                    StoreError::Conflict(_) => StoreError::Conflict(format!(
                        "a template of connection `{}` of component `{}` exists; templates are \
                         set once (instances that use it keep working with its values)",
                        template.connection_key, template.component_key
                    )),
                    other => other,
                })?;
            Ok(())
        })
        .await
    }

    async fn connection_template(
        &self,
        tenant: &str,
        component: &str,
        key: &str,
    ) -> Result<Option<ConnectionTemplate>, StoreError> {
        let (tenant, component, key) = (tenant.to_string(), component.to_string(), key.to_string());
        self.interact(move |connection| {
            connection
                .query_row(
                    &format!(
                        "SELECT {TEMPLATE_COLUMNS} FROM connection_templates
                         WHERE tenant_id = ?1 AND component_key = ?2 AND connection_key = ?3"
                    ),
                    params![tenant, component, key],
                    template,
                )
                .optional()
                .map_err(sql)?
                .map(with_names)
                .transpose()
        })
        .await
    }

    async fn connection_templates(
        &self,
        tenant: &str,
    ) -> Result<Vec<ConnectionTemplate>, StoreError> {
        let tenant = tenant.to_string();
        self.interact(move |connection| {
            let mut statement = connection
                .prepare(&format!(
                    "SELECT {TEMPLATE_COLUMNS} FROM connection_templates
                     WHERE tenant_id = ?1 ORDER BY component_key, connection_key"
                ))
                .map_err(sql)?;
            let rows = statement
                .query_map(params![tenant], template)
                .map_err(sql)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sql)?;
            rows.into_iter().map(with_names).collect()
        })
        .await
    }
}

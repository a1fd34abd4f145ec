//! [`InstanceStore`] on SQLite.

use std::collections::BTreeMap;

use async_trait::async_trait;
use deadpool_sqlite::rusqlite::{self, Connection, OptionalExtension, Row, ToSql, params};

use super::{SqliteStore, sql};
use crate::store::StoreError;
use crate::store::instances::{Instance, InstanceContext, InstanceStatus, InstanceStore, Webhook};

const COLUMNS: &str =
    "id, tenant_id, customer_id, name, integration_key, integration_version, enabled, config,
     connections, allowed_hosts, flow_settings, status, status_detail, created_ms, updated_ms";

fn json_column<T: serde::de::DeserializeOwned>(row: &Row<'_>, index: usize) -> rusqlite::Result<T> {
    let text: String = row.get(index)?;
    serde_json::from_str(&text).map_err(|err| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(err))
    })
}

fn instance(row: &Row<'_>) -> rusqlite::Result<(Instance, String)> {
    Ok((
        Instance {
            id: row.get(0)?,
            tenant_id: row.get(1)?,
            customer_id: row.get(2)?,
            name: row.get(3)?,
            integration_key: row.get(4)?,
            integration_version: row.get(5)?,
            enabled: row.get(6)?,
            config: json_column(row, 7)?,
            sealed_connections: row.get(8)?,
            allowed_hosts: json_column(row, 9)?,
            flow_settings: json_column(row, 10)?,
            status: InstanceStatus::Deploying,
            status_detail: row.get(12)?,
            created_ms: row.get(13)?,
            updated_ms: row.get(14)?,
        },
        row.get(11)?,
    ))
}

fn with_status((mut instance, status): (Instance, String)) -> Result<Instance, StoreError> {
    instance.status = InstanceStatus::parse(&status)?;
    Ok(instance)
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|err| StoreError::Backend(err.to_string()))
}

/// An instance as the columns of [`COLUMNS`] hold it, in their order (`?1` is `id`,
/// `?15` is `updated_ms`): the one parameter list of the insert and the update, so the
/// two cannot disagree on a column.
struct InstanceRow {
    instance: Instance,
    config: String,
    allowed_hosts: String,
    flow_settings: String,
    status: &'static str,
}

impl InstanceRow {
    fn new(instance: &Instance) -> Result<Self, StoreError> {
        Ok(InstanceRow {
            config: to_json(&instance.config)?,
            allowed_hosts: to_json(&instance.allowed_hosts)?,
            flow_settings: to_json(&instance.flow_settings)?,
            status: instance.status.as_str(),
            instance: instance.clone(),
        })
    }

    fn params(&self) -> [&dyn ToSql; 15] {
        let instance = &self.instance;
        [
            &instance.id,
            &instance.tenant_id,
            &instance.customer_id,
            &instance.name,
            &instance.integration_key,
            &instance.integration_version,
            &instance.enabled,
            &self.config,
            &instance.sealed_connections,
            &self.allowed_hosts,
            &self.flow_settings,
            &self.status,
            &instance.status_detail,
            &instance.created_ms,
            &instance.updated_ms,
        ]
    }
}

// The reads below are on the webhook hot path: cached statements, so each request
// does not parse and plan its SQL again.

fn select_instance(
    connection: &Connection,
    tenant: &str,
    id: &str,
) -> Result<Option<Instance>, StoreError> {
    connection
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM instances WHERE tenant_id = ?1 AND id = ?2"
        ))
        .map_err(sql)?
        .query_row(params![tenant, id], instance)
        .optional()
        .map_err(sql)?
        .map(with_status)
        .transpose()
}

fn select_webhooks(
    connection: &Connection,
    tenant: &str,
    instance: &str,
) -> Result<BTreeMap<String, String>, StoreError> {
    let mut statement = connection
        .prepare_cached(
            "SELECT flow_key, token FROM webhooks WHERE tenant_id = ?1 AND instance_id = ?2",
        )
        .map_err(sql)?;
    let rows = statement
        .query_map(params![tenant, instance], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .map_err(sql)?;
    rows.collect::<Result<BTreeMap<_, _>, _>>().map_err(sql)
}

fn select_webhook(connection: &Connection, token: &str) -> Result<Option<Webhook>, StoreError> {
    connection
        .prepare_cached(
            "SELECT token, tenant_id, instance_id, flow_key FROM webhooks WHERE token = ?1",
        )
        .map_err(sql)?
        .query_row([token], |row| {
            Ok(Webhook {
                token: row.get(0)?,
                tenant_id: row.get(1)?,
                instance_id: row.get(2)?,
                flow_key: row.get(3)?,
            })
        })
        .optional()
        .map_err(sql)
}

/// The instance, its customer's external id and its webhooks. The caller runs it in
/// a transaction, so the three reads see one snapshot.
fn select_context(
    connection: &Connection,
    tenant: &str,
    id: &str,
) -> Result<Option<InstanceContext>, StoreError> {
    let Some(instance) = select_instance(connection, tenant, id)? else {
        return Ok(None);
    };
    let customer_external_id = connection
        .prepare_cached("SELECT external_id FROM customers WHERE tenant_id = ?1 AND id = ?2")
        .map_err(sql)?
        .query_row(params![tenant, instance.customer_id], |row| {
            row.get::<_, Option<String>>(0)
        })
        .optional()
        .map_err(sql)?
        .flatten();
    let webhooks = select_webhooks(connection, tenant, id)?;
    Ok(Some(InstanceContext {
        instance,
        customer_external_id,
        webhooks,
    }))
}

#[async_trait]
impl InstanceStore for SqliteStore {
    async fn create_instance(
        &self,
        instance: &Instance,
        webhooks: &[(String, String)],
    ) -> Result<(), StoreError> {
        let row = InstanceRow::new(instance)?;
        let webhooks = webhooks.to_vec();
        self.interact(move |connection| {
            let transaction = connection.transaction().map_err(sql)?;
            transaction
                .execute(
                    &format!("INSERT INTO instances ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"),
                    &row.params()[..],
                )
                .map_err(sql)?;
            let instance = &row.instance;
            for (flow, token) in &webhooks {
                transaction
                    .execute(
                        "INSERT INTO webhooks (token, tenant_id, instance_id, flow_key) VALUES (?1, ?2, ?3, ?4)",
                        params![token, instance.tenant_id, instance.id, flow],
                    )
                    .map_err(sql)?;
            }
            transaction.commit().map_err(sql)
        })
        .await
    }

    async fn get_instance(&self, tenant: &str, id: &str) -> Result<Option<Instance>, StoreError> {
        let (tenant, id) = (tenant.to_string(), id.to_string());
        self.interact(move |connection| select_instance(connection, &tenant, &id))
            .await
    }

    async fn list_instances(
        &self,
        tenant: &str,
        customer: Option<&str>,
    ) -> Result<Vec<Instance>, StoreError> {
        let (tenant, customer) = (tenant.to_string(), customer.map(str::to_string));
        let rows = self
            .interact(move |connection| {
                let mut statement = connection
                    .prepare(&format!(
                        "SELECT {COLUMNS} FROM instances WHERE tenant_id = ?1 AND (?2 IS NULL OR customer_id = ?2)
                         ORDER BY created_ms DESC, id DESC"
                    ))
                    .map_err(sql)?;
                let rows = statement.query_map(params![tenant, customer], instance).map_err(sql)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(sql)
            })
            .await?;
        rows.into_iter().map(with_status).collect()
    }

    async fn save_instance(&self, instance: &Instance) -> Result<(), StoreError> {
        let row = InstanceRow::new(instance)?;
        let updated = self
            .interact(move |connection| {
                // The insert's parameters: `created_ms` (?14) is bound and never changes.
                connection
                    .execute(
                        "UPDATE instances SET customer_id = ?3, name = ?4, integration_key = ?5, integration_version = ?6,
                         enabled = ?7, config = ?8, connections = ?9, allowed_hosts = ?10, flow_settings = ?11,
                         status = ?12, status_detail = ?13, updated_ms = ?15
                         WHERE id = ?1 AND tenant_id = ?2",
                        &row.params()[..],
                    )
                    .map_err(sql)
            })
            .await?;
        if updated == 0 {
            return Err(StoreError::NotFound("instance".into()));
        }
        Ok(())
    }

    async fn set_webhooks(
        &self,
        tenant: &str,
        instance: &str,
        webhooks: &[(String, String)],
    ) -> Result<(), StoreError> {
        let (tenant, instance) = (tenant.to_string(), instance.to_string());
        let webhooks = webhooks.to_vec();
        self.interact(move |connection| {
            // IMMEDIATE: it reads before it writes (see `append_logs`).
            let transaction = connection
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(sql)?;
            let mut existing = BTreeMap::new();
            {
                let mut statement = transaction
                    .prepare("SELECT flow_key, token FROM webhooks WHERE tenant_id = ?1 AND instance_id = ?2")
                    .map_err(sql)?;
                let rows = statement
                    .query_map(params![tenant, instance], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))
                    .map_err(sql)?;
                for row in rows {
                    let (flow, token) = row.map_err(sql)?;
                    existing.insert(flow, token);
                }
            }
            for (flow, token) in &existing {
                if !webhooks.iter().any(|(wanted, _)| wanted == flow) {
                    transaction.execute("DELETE FROM webhooks WHERE token = ?1", [token]).map_err(sql)?;
                }
            }
            for (flow, token) in &webhooks {
                if !existing.contains_key(flow) {
                    transaction
                        .execute(
                            "INSERT INTO webhooks (token, tenant_id, instance_id, flow_key) VALUES (?1, ?2, ?3, ?4)",
                            params![token, tenant, instance, flow],
                        )
                        .map_err(sql)?;
                }
            }
            transaction.commit().map_err(sql)
        })
        .await
    }

    async fn webhooks_of(
        &self,
        tenant: &str,
        instance: &str,
    ) -> Result<BTreeMap<String, String>, StoreError> {
        let (tenant, instance) = (tenant.to_string(), instance.to_string());
        self.interact(move |connection| select_webhooks(connection, &tenant, &instance))
            .await
    }

    async fn webhook(&self, token: &str) -> Result<Option<Webhook>, StoreError> {
        let token = token.to_string();
        self.interact(move |connection| select_webhook(connection, &token))
            .await
    }

    async fn instance_context(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<InstanceContext>, StoreError> {
        let (tenant, id) = (tenant.to_string(), id.to_string());
        self.interact(move |connection| {
            let transaction = connection.transaction().map_err(sql)?;
            let context = select_context(&transaction, &tenant, &id)?;
            transaction.commit().map_err(sql)?;
            Ok(context)
        })
        .await
    }

    async fn webhook_context(
        &self,
        token: &str,
    ) -> Result<Option<(Webhook, InstanceContext)>, StoreError> {
        let token = token.to_string();
        self.interact(move |connection| {
            let transaction = connection.transaction().map_err(sql)?;
            let found = match select_webhook(&transaction, &token)? {
                Some(webhook) => {
                    select_context(&transaction, &webhook.tenant_id, &webhook.instance_id)?
                        .map(|context| (webhook, context))
                }
                None => None,
            };
            transaction.commit().map_err(sql)?;
            Ok(found)
        })
        .await
    }

    async fn delete_instance(&self, tenant: &str, id: &str) -> Result<(), StoreError> {
        let (tenant, id) = (tenant.to_string(), id.to_string());
        self.interact(move |connection| {
            let transaction = connection.transaction().map_err(sql)?;
            // Work not yet started (queued, retries waiting for their time, FIFO queues)
            // is discarded with the instance; finished executions stay for the record
            // until retention removes them.
            transaction
                .execute(
                    "DELETE FROM executions WHERE tenant_id = ?1 AND instance_id = ?2 AND status IN ('queued', 'waiting')",
                    params![tenant, id],
                )
                .map_err(sql)?;
            let deleted = transaction
                .execute("DELETE FROM instances WHERE tenant_id = ?1 AND id = ?2", params![tenant, id])
                .map_err(sql)?;
            if deleted == 0 {
                return Err(StoreError::NotFound("instance".into()));
            }
            transaction.commit().map_err(sql)
        })
        .await
    }
}

//! [`CustomerStore`] on SQLite. External ids are unique per tenant by the table's
//! constraint; a violation is answered as a conflict naming the id.

use async_trait::async_trait;
use deadpool_sqlite::rusqlite::{
    self, Connection, OptionalExtension, Row, TransactionBehavior, params,
};

use super::{SqliteStore, sql};
use crate::store::customers::{Customer, CustomerStore, CustomerUpdate};
use crate::store::{StoreError, new_id, now_ms};

const COLUMNS: &str = "id, name, external_id, created_ms";

fn customer(row: &Row<'_>) -> rusqlite::Result<Customer> {
    Ok(Customer {
        id: row.get(0)?,
        name: row.get(1)?,
        external_id: row.get(2)?,
        created_ms: row.get(3)?,
    })
}

fn duplicate_external_id(external_id: Option<&str>) -> impl Fn(rusqlite::Error) -> StoreError {
    let external_id = external_id.map(str::to_string);
    move |err| match (sql(err), &external_id) {
        (StoreError::Conflict(_), Some(id)) => {
            StoreError::Conflict(format!("a customer with external id `{id}` already exists"))
        }
        (other, _) => other,
    }
}

fn select(connection: &Connection, tenant: &str, id: &str) -> Result<Option<Customer>, StoreError> {
    connection
        .query_row(
            &format!("SELECT {COLUMNS} FROM customers WHERE tenant_id = ?1 AND id = ?2"),
            params![tenant, id],
            customer,
        )
        .optional()
        .map_err(sql)
}

#[async_trait]
impl CustomerStore for SqliteStore {
    async fn create_customer(
        &self,
        tenant: &str,
        name: &str,
        external_id: Option<&str>,
    ) -> Result<Customer, StoreError> {
        let row = Customer {
            id: new_id(),
            name: name.to_string(),
            external_id: external_id.map(str::to_string),
            created_ms: now_ms(),
        };
        let (tenant, inserted) = (tenant.to_string(), row.clone());
        self.interact(move |connection| {
            connection
                .execute(
                    &format!(
                        "INSERT INTO customers (tenant_id, {COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5)"
                    ),
                    params![
                        tenant,
                        inserted.id,
                        inserted.name,
                        inserted.external_id,
                        inserted.created_ms
                    ],
                )
                .map_err(duplicate_external_id(inserted.external_id.as_deref()))?;
            Ok(())
        })
        .await?;
        Ok(row)
    }

    async fn get_customer(&self, tenant: &str, id: &str) -> Result<Option<Customer>, StoreError> {
        let (tenant, id) = (tenant.to_string(), id.to_string());
        self.interact(move |connection| select(connection, &tenant, &id))
            .await
    }

    async fn list_customers(
        &self,
        tenant: &str,
        external_id: Option<&str>,
    ) -> Result<Vec<Customer>, StoreError> {
        let (tenant, external_id) = (tenant.to_string(), external_id.map(str::to_string));
        self.interact(move |connection| {
            let mut statement = connection
                .prepare(&format!(
                    "SELECT {COLUMNS} FROM customers
                     WHERE tenant_id = ?1 AND (?2 IS NULL OR external_id = ?2)
                     ORDER BY created_ms, id"
                ))
                .map_err(sql)?;
            let rows = statement
                .query_map(params![tenant, external_id], customer)
                .map_err(sql)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(sql)
        })
        .await
    }

    async fn update_customer(
        &self,
        tenant: &str,
        id: &str,
        update: CustomerUpdate,
    ) -> Result<Customer, StoreError> {
        let (tenant, id) = (tenant.to_string(), id.to_string());
        self.interact(move |connection| {
            // IMMEDIATE: read and write under one write lock (a deferred transaction
            // upgrading to a writer can fail at once in WAL mode when another won).
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql)?;
            let Some(mut current) = select(&transaction, &tenant, &id)? else {
                return Err(StoreError::NotFound(format!("customer `{id}`")));
            };
            if let Some(name) = update.name {
                current.name = name;
            }
            if let Some(external_id) = update.external_id {
                current.external_id = external_id;
            }
            transaction
                .execute(
                    "UPDATE customers SET name = ?3, external_id = ?4 WHERE tenant_id = ?1 AND id = ?2",
                    params![tenant, id, current.name, current.external_id],
                )
                .map_err(duplicate_external_id(current.external_id.as_deref()))?;
            transaction.commit().map_err(sql)?;
            Ok(current)
        })
        .await
    }

    async fn delete_customer(&self, tenant: &str, id: &str) -> Result<(), StoreError> {
        let (tenant, id) = (tenant.to_string(), id.to_string());
        self.interact(move |connection| {
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql)?;
            if select(&transaction, &tenant, &id)?.is_none() {
                return Err(StoreError::NotFound(format!("customer `{id}`")));
            }
            // Checked here rather than left to the foreign key, so the client learns
            // which instances to remove first.
            let instances: Vec<String> = {
                let mut statement = transaction
                    .prepare(
                        "SELECT name || ' (' || id || ')' FROM instances
                         WHERE tenant_id = ?1 AND customer_id = ?2 ORDER BY created_ms",
                    )
                    .map_err(sql)?;
                let rows = statement
                    .query_map(params![tenant, id], |row| row.get(0))
                    .map_err(sql)?;
                rows.collect::<Result<_, _>>().map_err(sql)?
            };
            if !instances.is_empty() {
                return Err(StoreError::Conflict(format!(
                    "customer `{id}` has {} instance{}: {}; delete {} first",
                    instances.len(),
                    if instances.len() == 1 { "" } else { "s" },
                    instances.join(", "),
                    if instances.len() == 1 { "it" } else { "them" },
                )));
            }
            transaction
                .execute(
                    "DELETE FROM customers WHERE tenant_id = ?1 AND id = ?2",
                    params![tenant, id],
                )
                .map_err(sql)?;
            transaction.commit().map_err(sql)
        })
        .await
    }
}

//! [`ComponentStore`] on SQLite. Uploads and deletes run in IMMEDIATE transactions, so
//! version numbers are handed out once and a delete cannot race a publish that pins
//! the version (integration pins are read with JSON1).

use async_trait::async_trait;
use bytes::Bytes;
use deadpool_sqlite::rusqlite::{self, OptionalExtension, Row, TransactionBehavior, params};

use super::versions::{self, Versioned};
use super::{SqliteStore, sql};
use crate::store::components::{
    CompileRecord, ComponentStore, ComponentSummary, ComponentUsers, ComponentVersion,
    NewComponentVersion,
};
use crate::store::{StoreError, now_ms};

const COLUMNS: &str = "key, version, hash, world, manifest, size, created_ms, \
                       compile_time_us, compile_peak_memory_bytes";

impl Versioned for ComponentVersion {
    const TABLE: &'static str = "component_versions";
    const COLUMNS: &'static str = COLUMNS;

    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(ComponentVersion {
            key: row.get(0)?,
            version: row.get(1)?,
            hash: row.get(2)?,
            world: row.get(3)?,
            manifest: row.get(4)?,
            size: row.get(5)?,
            created_ms: row.get(6)?,
            compile: CompileRecord {
                time_us: row.get(7)?,
                peak_memory_bytes: row.get(8)?,
            },
        })
    }
}

#[async_trait]
impl ComponentStore for SqliteStore {
    async fn put_component_version(
        &self,
        tenant: &str,
        new: NewComponentVersion,
    ) -> Result<(ComponentVersion, bool), StoreError> {
        let tenant = tenant.to_string();
        self.interact(move |connection| {
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql)?;
            if let Some(existing) =
                versions::find(&transaction, &tenant, &new.key, "hash", &new.hash)?
            {
                return Ok((existing, false));
            }
            transaction
                .execute(
                    "INSERT OR IGNORE INTO component_blobs (hash, bytes) VALUES (?1, ?2)",
                    params![new.hash, new.bytes.as_ref()],
                )
                .map_err(sql)?;
            let version: i64 = transaction
                .query_row(
                    "INSERT INTO component_keys (tenant_id, key, last_version) VALUES (?1, ?2, 1)
                     ON CONFLICT (tenant_id, key) DO UPDATE SET last_version = last_version + 1
                     RETURNING last_version",
                    params![tenant, new.key],
                    |row| row.get(0),
                )
                .map_err(sql)?;
            let row = ComponentVersion {
                key: new.key,
                version,
                hash: new.hash,
                world: new.world,
                manifest: new.manifest,
                size: i64::try_from(new.bytes.len()).unwrap_or(i64::MAX),
                created_ms: now_ms(),
                compile: new.compile,
            };
            transaction
                .execute(
                    &format!(
                        "INSERT INTO component_versions (tenant_id, {COLUMNS})
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
                    ),
                    params![
                        tenant,
                        row.key,
                        row.version,
                        row.hash,
                        row.world,
                        row.manifest,
                        row.size,
                        row.created_ms,
                        row.compile.time_us,
                        row.compile.peak_memory_bytes
                    ],
                )
                .map_err(sql)?;
            transaction.commit().map_err(sql)?;
            Ok((row, true))
        })
        .await
    }

    async fn list_components(&self, tenant: &str) -> Result<Vec<ComponentSummary>, StoreError> {
        let tenant = tenant.to_string();
        self.interact(move |connection| {
            let latest = versions::latest(connection, &tenant)?;
            Ok(latest
                .into_iter()
                .map(|(latest, versions)| ComponentSummary { latest, versions })
                .collect())
        })
        .await
    }

    async fn component_versions(
        &self,
        tenant: &str,
        key: &str,
    ) -> Result<Vec<ComponentVersion>, StoreError> {
        let (tenant, key) = (tenant.to_string(), key.to_string());
        self.interact(move |connection| versions::all(connection, &tenant, &key))
            .await
    }

    async fn component_version(
        &self,
        tenant: &str,
        key: &str,
        version: i64,
    ) -> Result<Option<ComponentVersion>, StoreError> {
        let (tenant, key) = (tenant.to_string(), key.to_string());
        self.interact(move |connection| {
            versions::find(connection, &tenant, &key, "version", &version)
        })
        .await
    }

    async fn component_bytes(
        &self,
        tenant: &str,
        key: &str,
        version: i64,
    ) -> Result<Option<Bytes>, StoreError> {
        let (tenant, key) = (tenant.to_string(), key.to_string());
        self.interact(move |connection| {
            // Through the tenant's version row: blobs are shared, access is not.
            connection
                .query_row(
                    "SELECT b.bytes FROM component_versions v JOIN component_blobs b ON b.hash = v.hash
                     WHERE v.tenant_id = ?1 AND v.key = ?2 AND v.version = ?3",
                    params![tenant, key, version],
                    |row| row.get::<_, Vec<u8>>(0),
                )
                .optional()
                .map(|bytes| bytes.map(Bytes::from))
                .map_err(sql)
        })
        .await
    }

    async fn delete_component_version(
        &self,
        tenant: &str,
        key: &str,
        version: i64,
    ) -> Result<Result<(), ComponentUsers>, StoreError> {
        let (tenant, key) = (tenant.to_string(), key.to_string());
        self.interact(move |connection| {
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql)?;
            let Some(row) = versions::find::<ComponentVersion>(&transaction, &tenant, &key, "version", &version)? else {
                return Err(StoreError::NotFound(format!(
                    "component `{key}` version {version}"
                )));
            };
            let integration_versions: Vec<(String, i64)> = {
                let mut statement = transaction
                    .prepare(
                        "SELECT DISTINCT i.key, i.version FROM integration_versions i, json_each(i.pins) p
                         WHERE i.tenant_id = ?1 AND p.key = ?2
                           AND json_extract(p.value, '$.version') = ?3
                         ORDER BY i.key, i.version",
                    )
                    .map_err(sql)?;
                let rows = statement
                    .query_map(params![tenant, key, version], |row| {
                        Ok((row.get(0)?, row.get(1)?))
                    })
                    .map_err(sql)?;
                rows.collect::<Result<_, _>>().map_err(sql)?
            };
            if !integration_versions.is_empty() {
                let instances: Vec<(String, String)> = {
                    let mut statement = transaction
                        .prepare(
                            "SELECT n.id, n.name FROM instances n
                             WHERE n.tenant_id = ?1 AND EXISTS (
                                 SELECT 1 FROM integration_versions i, json_each(i.pins) p
                                 WHERE i.tenant_id = n.tenant_id AND i.key = n.integration_key
                                   AND i.version = n.integration_version AND p.key = ?2
                                   AND json_extract(p.value, '$.version') = ?3)
                             ORDER BY n.created_ms, n.id",
                        )
                        .map_err(sql)?;
                    let rows = statement
                        .query_map(params![tenant, key, version], |row| {
                            Ok((row.get(0)?, row.get(1)?))
                        })
                        .map_err(sql)?;
                    rows.collect::<Result<_, _>>().map_err(sql)?
                };
                return Ok(Err(ComponentUsers {
                    integration_versions,
                    instances,
                }));
            }
            transaction
                .execute(
                    "DELETE FROM component_versions WHERE tenant_id = ?1 AND key = ?2 AND version = ?3",
                    params![tenant, key, version],
                )
                .map_err(sql)?;
            // The bytes go with their last user, whichever tenant that was.
            transaction
                .execute(
                    "DELETE FROM component_blobs WHERE hash = ?1
                     AND NOT EXISTS (SELECT 1 FROM component_versions WHERE hash = ?1)",
                    [&row.hash],
                )
                .map_err(sql)?;
            transaction.commit().map_err(sql)?;
            Ok(Ok(()))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::store::integrations::{NewIntegrationVersion, Pin};
    use crate::store::{CustomerStore, IntegrationStore, TenantStore};

    fn upload(key: &str, bytes: &'static [u8]) -> NewComponentVersion {
        NewComponentVersion {
            key: key.into(),
            hash: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes)),
            world: "component".into(),
            manifest: format!(r#"{{"key":"{key}","version":"0.1.0"}}"#),
            bytes: Bytes::from_static(bytes),
            compile: CompileRecord::default(),
        }
    }

    #[tokio::test]
    async fn versions_pins_instances_and_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.db")).await.unwrap();
        let t = store.create_tenant("T", "h1", "sk_1").await.unwrap().id;
        let other = store.create_tenant("U", "h2", "sk_2").await.unwrap().id;

        let (v1, new) = store
            .put_component_version(&t, upload("c", b"one"))
            .await
            .unwrap();
        assert_eq!((v1.version, new), (1, true));
        let (again, new) = store
            .put_component_version(&t, upload("c", b"one"))
            .await
            .unwrap();
        assert_eq!((again, new), (v1.clone(), false));
        let (v2, _) = store
            .put_component_version(&t, upload("c", b"two"))
            .await
            .unwrap();
        assert_eq!(v2.version, 2);
        // The other tenant's copy of the same bytes shares the blob.
        store
            .put_component_version(&other, upload("c", b"one"))
            .await
            .unwrap();

        // Integration version 1 pins c@1; an instance is deployed from it.
        let pins = BTreeMap::from([(
            "c".to_string(),
            Pin {
                version: 1,
                hash: v1.hash.clone(),
            },
        )]);
        let new_integration = |hash: &str| NewIntegrationVersion {
            key: "sync".into(),
            definition: "{}".into(),
            definition_hash: hash.into(),
            pins: pins.clone(),
        };
        let (i1, _) = store
            .put_integration_version(&t, new_integration("d1"))
            .await
            .unwrap();
        assert_eq!(i1.version, 1);
        let customer = store
            .create_customer(&t, "Acme", Some("acme"))
            .await
            .unwrap();
        let (tenant, customer_id) = (t.clone(), customer.id.clone());
        store
            .interact(move |c| {
                c.execute(
                    "INSERT INTO instances (id, tenant_id, customer_id, name, integration_key,
                        integration_version, enabled, config, connections, allowed_hosts,
                        flow_settings, status, created_ms, updated_ms)
                     VALUES ('i-1', ?1, ?2, 'Acme sync', 'sync', 1, 1, '{}', x'', '[]', '{}',
                        'deployed', 0, 0)",
                    params![tenant, customer_id],
                )
                .map_err(sql)
            })
            .await
            .unwrap();

        let users = store
            .delete_component_version(&t, "c", 1)
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(users.integration_versions, [("sync".to_string(), 1)]);
        assert_eq!(
            users.instances,
            [("i-1".to_string(), "Acme sync".to_string())]
        );
        match store.delete_customer(&t, &customer.id).await {
            Err(StoreError::Conflict(message)) => {
                assert!(message.contains("Acme sync (i-1)"), "{message}")
            }
            other => panic!("{other:?}"),
        }

        // Unpinned: deleted, and its number is never given out again.
        store
            .delete_component_version(&t, "c", 2)
            .await
            .unwrap()
            .unwrap();
        let (v3, _) = store
            .put_component_version(&t, upload("c", b"three"))
            .await
            .unwrap();
        assert_eq!(v3.version, 3);
        assert!(store.component_bytes(&t, "c", 2).await.unwrap().is_none());
        assert!(matches!(
            store.delete_component_version(&t, "c", 2).await,
            Err(StoreError::NotFound(_))
        ));

        // A publish whose pin vanished meanwhile is refused.
        let mut stale = new_integration("d2");
        stale.pins.insert(
            "c".into(),
            Pin {
                version: 2,
                hash: v2.hash.clone(),
            },
        );
        assert!(matches!(
            store.put_integration_version(&t, stale).await,
            Err(StoreError::Conflict(_))
        ));

        // Blobs: shared bytes stay while any tenant's version uses them.
        assert_eq!(
            store
                .component_bytes(&other, "c", 1)
                .await
                .unwrap()
                .as_deref(),
            Some(&b"one"[..])
        );
        let summary = store.list_components(&t).await.unwrap();
        assert_eq!((summary[0].latest.version, summary[0].versions), (3, 2));
    }
}

//! [`ComponentUploadStore`] on SQLite.

use async_trait::async_trait;
use deadpool_sqlite::rusqlite::{self, OptionalExtension, Row, params};

use super::{SqliteStore, sql};
use crate::store::uploads::{ComponentUpload, ComponentUploadStore, UploadStatus};
use crate::store::{StoreError, new_id, now_ms};

const COLUMNS: &str = "id, size, hash, created_ms, finished_ms, status, component_key, \
                       version, created_version, error_code, error_message";

/// The error code of an upload whose host stopped before the compile ended.
const INTERRUPTED: &str = "upload-interrupted";

fn upload(row: &Row<'_>) -> rusqlite::Result<ComponentUpload> {
    let status: String = row.get(5)?;
    let status = match status.as_str() {
        "ready" => UploadStatus::Ready {
            key: row.get::<_, Option<String>>(6)?.unwrap_or_default(),
            version: row.get::<_, Option<i64>>(7)?.unwrap_or_default(),
            created: row.get::<_, Option<bool>>(8)?.unwrap_or_default(),
        },
        "failed" => UploadStatus::Failed {
            code: row.get::<_, Option<String>>(9)?.unwrap_or_default(),
            message: row.get::<_, Option<String>>(10)?.unwrap_or_default(),
        },
        _ => UploadStatus::Compiling,
    };
    Ok(ComponentUpload {
        id: row.get(0)?,
        size: row.get(1)?,
        hash: row.get(2)?,
        created_ms: row.get(3)?,
        finished_ms: row.get(4)?,
        status,
    })
}

#[async_trait]
impl ComponentUploadStore for SqliteStore {
    async fn create_upload(
        &self,
        tenant: &str,
        size: i64,
        hash: &str,
    ) -> Result<ComponentUpload, StoreError> {
        let row = ComponentUpload {
            id: new_id(),
            size,
            hash: hash.to_string(),
            created_ms: now_ms(),
            finished_ms: None,
            status: UploadStatus::Compiling,
        };
        let (tenant, inserted) = (tenant.to_string(), row.clone());
        self.interact(move |connection| {
            connection
                .execute(
                    "INSERT INTO component_uploads (id, tenant_id, status, size, hash, created_ms)
                     VALUES (?1, ?2, 'compiling', ?3, ?4, ?5)",
                    params![
                        inserted.id,
                        tenant,
                        inserted.size,
                        inserted.hash,
                        inserted.created_ms
                    ],
                )
                .map_err(sql)?;
            Ok(())
        })
        .await?;
        Ok(row)
    }

    async fn finish_upload(
        &self,
        tenant: &str,
        id: &str,
        status: UploadStatus,
    ) -> Result<bool, StoreError> {
        let (tenant, id) = (tenant.to_string(), id.to_string());
        let finished = now_ms();
        self.interact(move |connection| {
            let (key, version, created, code, message) = match &status {
                UploadStatus::Compiling => return Ok(false),
                UploadStatus::Ready {
                    key,
                    version,
                    created,
                } => (
                    Some(key.clone()),
                    Some(*version),
                    Some(*created),
                    None,
                    None,
                ),
                UploadStatus::Failed { code, message } => {
                    (None, None, None, Some(code.clone()), Some(message.clone()))
                }
            };
            let changed = connection
                .execute(
                    "UPDATE component_uploads
                     SET status = ?3, finished_ms = ?4, component_key = ?5, version = ?6,
                         created_version = ?7, error_code = ?8, error_message = ?9
                     WHERE tenant_id = ?1 AND id = ?2 AND status = 'compiling'",
                    params![
                        tenant,
                        id,
                        status.name(),
                        finished,
                        key,
                        version,
                        created,
                        code,
                        message
                    ],
                )
                .map_err(sql)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn component_upload(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<ComponentUpload>, StoreError> {
        let (tenant, id) = (tenant.to_string(), id.to_string());
        self.interact(move |connection| {
            connection
                .query_row(
                    &format!(
                        "SELECT {COLUMNS} FROM component_uploads WHERE tenant_id = ?1 AND id = ?2"
                    ),
                    params![tenant, id],
                    upload,
                )
                .optional()
                .map_err(sql)
        })
        .await
    }

    async fn delete_uploads_finished_before(&self, cutoff_ms: i64) -> Result<u64, StoreError> {
        self.interact(move |connection| {
            let deleted = connection
                .execute(
                    "DELETE FROM component_uploads
                     WHERE status != 'compiling' AND finished_ms < ?1",
                    params![cutoff_ms],
                )
                .map_err(sql)?;
            Ok(deleted as u64)
        })
        .await
    }

    async fn fail_unfinished_uploads(&self, message: &str) -> Result<u64, StoreError> {
        let message = message.to_string();
        let finished = now_ms();
        self.interact(move |connection| {
            let changed = connection
                .execute(
                    "UPDATE component_uploads
                     SET status = 'failed', finished_ms = ?1, error_code = ?2, error_message = ?3
                     WHERE status = 'compiling'",
                    params![finished, INTERRUPTED, message],
                )
                .map_err(sql)?;
            Ok(changed as u64)
        })
        .await
    }
}

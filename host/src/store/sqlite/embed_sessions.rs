//! [`EmbedSessionStore`] on SQLite. A session is read with its customer in one query;
//! sessions long expired are pruned when a new one is written.

use async_trait::async_trait;
use deadpool_sqlite::rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::{SqliteStore, sql};
use crate::store::StoreError;
use crate::store::embed_sessions::{
    EXPIRED_SESSION_KEPT_MS, EmbedSessionStore, NewEmbedSession, StoredEmbedSession,
};

#[async_trait]
impl EmbedSessionStore for SqliteStore {
    async fn create_embed_session(
        &self,
        session: &NewEmbedSession,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let session = session.clone();
        self.interact(move |connection| {
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql)?;
            transaction
                .execute(
                    "DELETE FROM embed_sessions WHERE expires_ms < ?1",
                    [now_ms.saturating_sub(EXPIRED_SESSION_KEPT_MS)],
                )
                .map_err(sql)?;
            // The customer must be the tenant's: checked here, as the foreign key
            // alone would accept another tenant's customer.
            let inserted = transaction
                .execute(
                    "INSERT INTO embed_sessions (token_hash, tenant_id, customer_id, user_sub,
                         user_name, created_ms, expires_ms)
                     SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7
                     WHERE EXISTS (SELECT 1 FROM customers WHERE tenant_id = ?2 AND id = ?3)",
                    params![
                        session.token_hash,
                        session.tenant_id,
                        session.customer_id,
                        session.user_sub,
                        session.user_name,
                        now_ms,
                        session.expires_ms
                    ],
                )
                .map_err(sql)?;
            if inserted == 0 {
                return Err(StoreError::NotFound(format!(
                    "customer `{}`",
                    session.customer_id
                )));
            }
            transaction.commit().map_err(sql)
        })
        .await
    }

    async fn embed_session(
        &self,
        token_hash: &str,
    ) -> Result<Option<StoredEmbedSession>, StoreError> {
        let token_hash = token_hash.to_string();
        self.interact(move |connection| {
            connection
                .prepare_cached(
                    "SELECT s.tenant_id, s.customer_id, c.name, c.external_id, s.user_sub,
                            s.user_name, s.created_ms, s.expires_ms
                     FROM embed_sessions s
                     JOIN customers c ON c.id = s.customer_id AND c.tenant_id = s.tenant_id
                     WHERE s.token_hash = ?1",
                )
                .map_err(sql)?
                .query_row([token_hash], |row| {
                    Ok(StoredEmbedSession {
                        tenant_id: row.get(0)?,
                        customer_id: row.get(1)?,
                        customer_name: row.get(2)?,
                        customer_external_id: row.get(3)?,
                        user_sub: row.get(4)?,
                        user_name: row.get(5)?,
                        created_ms: row.get(6)?,
                        expires_ms: row.get(7)?,
                    })
                })
                .optional()
                .map_err(sql)
        })
        .await
    }
}

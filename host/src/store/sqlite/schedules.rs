//! [`ScheduleStore`] on SQLite: the `schedules` table (migration 010). A claim is a
//! compare-and-set on `next_run_ms`, so two scheduler ticks cannot fire one fire time.

use async_trait::async_trait;
use deadpool_sqlite::rusqlite::{self, Row, params};

use super::{SqliteStore, sql};
use crate::store::StoreError;
use crate::store::schedules::{Schedule, ScheduleSpec, ScheduleStore};

const COLUMNS: &str = "tenant_id, instance_id, flow_key, cron, timezone, next_run_ms, last_run_ms";

fn schedule(row: &Row<'_>) -> rusqlite::Result<Schedule> {
    Ok(Schedule {
        tenant_id: row.get(0)?,
        instance_id: row.get(1)?,
        flow_key: row.get(2)?,
        cron: row.get(3)?,
        timezone: row.get(4)?,
        next_run_ms: row.get(5)?,
        last_run_ms: row.get(6)?,
    })
}

#[async_trait]
impl ScheduleStore for SqliteStore {
    async fn set_schedules(
        &self,
        tenant: &str,
        instance: &str,
        specs: &[ScheduleSpec],
    ) -> Result<(), StoreError> {
        let (tenant, instance) = (tenant.to_string(), instance.to_string());
        let specs = specs.to_vec();
        self.interact(move |connection| {
            // IMMEDIATE: it reads before it writes, and a deferred transaction
            // overtaken by another writer fails with SQLITE_BUSY instead of waiting.
            let transaction = connection
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(sql)?;
            let existing: Vec<String> = {
                let mut statement = transaction
                    .prepare("SELECT flow_key FROM schedules WHERE tenant_id = ?1 AND instance_id = ?2")
                    .map_err(sql)?;
                let rows = statement
                    .query_map(params![tenant, instance], |row| row.get(0))
                    .map_err(sql)?;
                rows.collect::<rusqlite::Result<_>>().map_err(sql)?
            };
            for flow in existing
                .iter()
                .filter(|flow| !specs.iter().any(|spec| &spec.flow_key == *flow))
            {
                transaction
                    .execute(
                        "DELETE FROM schedules WHERE tenant_id = ?1 AND instance_id = ?2 AND flow_key = ?3",
                        params![tenant, instance, flow],
                    )
                    .map_err(sql)?;
            }
            for spec in &specs {
                // An unchanged schedule keeps its next fire time: resetting it on every
                // update would drop a run that is due but not yet claimed.
                transaction
                    .execute(
                        "INSERT INTO schedules (tenant_id, instance_id, flow_key, cron, timezone, next_run_ms)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                         ON CONFLICT (instance_id, flow_key) DO UPDATE
                         SET cron = excluded.cron, timezone = excluded.timezone,
                             next_run_ms = excluded.next_run_ms, last_run_ms = NULL
                         WHERE cron != excluded.cron OR timezone != excluded.timezone",
                        params![tenant, instance, spec.flow_key, spec.cron, spec.timezone, spec.next_run_ms],
                    )
                    .map_err(sql)?;
            }
            transaction.commit().map_err(sql)
        })
        .await
    }

    async fn schedules_of(
        &self,
        tenant: &str,
        instance: &str,
    ) -> Result<Vec<Schedule>, StoreError> {
        let (tenant, instance) = (tenant.to_string(), instance.to_string());
        self.interact(move |connection| {
            let mut statement = connection
                .prepare(&format!(
                    "SELECT {COLUMNS} FROM schedules WHERE tenant_id = ?1 AND instance_id = ?2 ORDER BY flow_key"
                ))
                .map_err(sql)?;
            let rows = statement
                .query_map(params![tenant, instance], schedule)
                .map_err(sql)?;
            rows.collect::<rusqlite::Result<_>>().map_err(sql)
        })
        .await
    }

    async fn due_schedules(&self, now_ms: i64, limit: usize) -> Result<Vec<Schedule>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.interact(move |connection| {
            let mut statement = connection
                .prepare(&format!(
                    "SELECT {COLUMNS} FROM schedules
                     WHERE next_run_ms IS NOT NULL AND next_run_ms <= ?1
                     ORDER BY next_run_ms LIMIT ?2"
                ))
                .map_err(sql)?;
            let rows = statement
                .query_map(params![now_ms, limit], schedule)
                .map_err(sql)?;
            rows.collect::<rusqlite::Result<_>>().map_err(sql)
        })
        .await
    }

    async fn claim_schedule(
        &self,
        schedule: &Schedule,
        next_run_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let schedule = schedule.clone();
        self.interact(move |connection| {
            let changed = connection
                .execute(
                    "UPDATE schedules SET next_run_ms = ?1, last_run_ms = ?2
                     WHERE instance_id = ?3 AND flow_key = ?4 AND next_run_ms IS ?5
                       AND cron = ?6 AND timezone = ?7",
                    params![
                        next_run_ms,
                        now_ms,
                        schedule.instance_id,
                        schedule.flow_key,
                        schedule.next_run_ms,
                        schedule.cron,
                        schedule.timezone
                    ],
                )
                .map_err(sql)?;
            Ok(changed == 1)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(flow: &str, cron: &str, next: i64) -> ScheduleSpec {
        ScheduleSpec {
            flow_key: flow.into(),
            cron: cron.into(),
            timezone: "UTC".into(),
            next_run_ms: Some(next),
        }
    }

    /// A store with one instance (the schedules table references instances).
    async fn store_with_instance() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.db")).await.unwrap();
        store
            .interact(|connection| {
                // Foreign keys are checked; this test is about schedules only.
                connection
                    .execute_batch("PRAGMA foreign_keys = OFF;")
                    .map_err(sql)?;
                connection
                    .execute(
                        "INSERT INTO instances (id, tenant_id, customer_id, name, integration_key,
                           integration_version, enabled, config, connections, allowed_hosts,
                           flow_settings, status, created_ms, updated_ms)
                         VALUES ('i1', 't1', 'c1', 'n', 'k', 1, 1, '{}', x'', '[]', '{}', 'deployed', 0, 0)",
                        [],
                    )
                    .map_err(sql)?;
                connection
                    .execute_batch("PRAGMA foreign_keys = ON;")
                    .map_err(sql)
            })
            .await
            .unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn sync_keeps_unchanged_rows_and_claims_are_exclusive() {
        let (_dir, store) = store_with_instance().await;
        store
            .set_schedules(
                "t1",
                "i1",
                &[spec("a", "* * * * *", 100), spec("b", "0 * * * *", 500)],
            )
            .await
            .unwrap();
        let due = store.due_schedules(200, 10).await.unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].flow_key, "a");
        // Two claims of one fire time: one wins.
        assert!(store.claim_schedule(&due[0], Some(160), 200).await.unwrap());
        assert!(!store.claim_schedule(&due[0], Some(160), 201).await.unwrap());
        // An unchanged spec keeps the claimed row's next fire time; a changed one restarts.
        store
            .set_schedules(
                "t1",
                "i1",
                &[spec("a", "* * * * *", 999), spec("b", "5 * * * *", 700)],
            )
            .await
            .unwrap();
        let rows = store.schedules_of("t1", "i1").await.unwrap();
        assert_eq!(rows[0].next_run_ms, Some(160));
        assert_eq!(rows[0].last_run_ms, Some(200));
        assert_eq!(
            (rows[1].cron.as_str(), rows[1].next_run_ms),
            ("5 * * * *", Some(700))
        );
        // Another tenant sees nothing; an empty spec list removes every row.
        assert!(store.schedules_of("t2", "i1").await.unwrap().is_empty());
        store.set_schedules("t1", "i1", &[]).await.unwrap();
        assert!(store.schedules_of("t1", "i1").await.unwrap().is_empty());
    }
}

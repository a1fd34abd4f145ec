//! Storage of flow schedules: one row per (instance, flow) that runs on a schedule,
//! with the cron it follows and its next fire time. The scheduler claims due rows by
//! moving their next fire time forward, so a fire time is claimed once.

use async_trait::async_trait;

use super::StoreError;

/// A schedule row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub tenant_id: String,
    pub instance_id: String,
    pub flow_key: String,
    /// The cron expression as written (5 or 6 fields).
    pub cron: String,
    /// IANA time zone of `cron`.
    pub timezone: String,
    /// The next fire time; `None` when the cron fires no more.
    pub next_run_ms: Option<i64>,
    /// When the scheduler last claimed this row.
    pub last_run_ms: Option<i64>,
}

/// What a flow of an instance should be scheduled as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleSpec {
    pub flow_key: String,
    pub cron: String,
    pub timezone: String,
    /// The first fire time, used when the row is new or its cron or time zone changed.
    pub next_run_ms: Option<i64>,
}

#[async_trait]
pub trait ScheduleStore: Send + Sync {
    /// Makes the instance's schedules exactly `specs`: rows of other flows go, new
    /// flows get a row, a row whose cron or time zone changed restarts from the spec's
    /// `next_run_ms`, and an unchanged row keeps its own (so a missed run is not lost
    /// by an unrelated update).
    async fn set_schedules(
        &self,
        tenant: &str,
        instance: &str,
        specs: &[ScheduleSpec],
    ) -> Result<(), StoreError>;
    /// The instance's schedules, by flow key.
    async fn schedules_of(&self, tenant: &str, instance: &str)
    -> Result<Vec<Schedule>, StoreError>;
    /// Rows whose next fire time is at or before `now_ms`, earliest first, at most
    /// `limit`.
    async fn due_schedules(&self, now_ms: i64, limit: usize) -> Result<Vec<Schedule>, StoreError>;
    /// Claims a due row: moves its next fire time from `schedule.next_run_ms` to
    /// `next_run_ms` and records `now_ms` as its last run, only if nobody moved it
    /// first (and its cron is still the same). `false`: someone else claimed it.
    async fn claim_schedule(
        &self,
        schedule: &Schedule,
        next_run_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<bool, StoreError>;
}

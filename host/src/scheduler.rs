//! Scheduled flows: keeps one `schedules` row per scheduled flow of every enabled,
//! deployed instance ([`sync_instance`]), and a background task that every
//! `schedule_tick` claims the due rows and queues one execution for each.
//!
//! **Missed runs.** A row is due at its next fire time. When the scheduler finds that
//! more fire times passed since then (the server was down, or the tick came late), it
//! queues one run for all of them: `scheduledAt` is the latest, `missed` counts the
//! earlier ones that never ran (at most [`MISSED_LIMIT`]); the schedule then goes on
//! from the first fire time after now. A disabled instance has no rows, so enabling it
//! again starts from the next fire time and catches nothing up. A crash between
//! claiming a row and queueing its run loses that one run rather than running it twice.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sluice_runtime::flow::{CronSchedule, ScheduleSource};

use crate::api::error::ApiError;
use crate::app::AppState;
use crate::integrations::{self, CompiledIntegration};
use crate::queue::{self, Enqueued, NewExecution, TriggerKind};
use crate::store::executions::Payload;
use crate::store::instances::{Instance, InstanceStatus};
use crate::store::now_ms;
use crate::store::schedules::{Schedule, ScheduleSpec};

/// The header that marks a scheduled run's trigger request.
pub const TRIGGER_HEADER: &str = "sluice-trigger";
/// Most missed fire times counted for one catch-up run (an every-second schedule
/// after a day of downtime counts 86,400; the count is for information only).
pub const MISSED_LIMIT: u64 = 100_000;
/// Due rows read per store query; a tick reads again while batches come back full.
const DUE_BATCH: usize = 256;

/// Checks that every scheduled flow of `compiled` has a usable schedule with `config`
/// (the instance's config variables): a 400 naming the config variable otherwise.
pub fn check_config(
    compiled: &CompiledIntegration,
    config: &BTreeMap<String, Value>,
) -> Result<(), ApiError> {
    specs(compiled, config, now_ms()).map(|_| ())
}

/// The schedule rows an instance with `config` needs, first fire times after `now`.
fn specs(
    compiled: &CompiledIntegration,
    config: &BTreeMap<String, Value>,
    now: i64,
) -> Result<Vec<ScheduleSpec>, ApiError> {
    let mut specs = Vec::new();
    for flow in compiled.plan.scheduled_flow_keys() {
        let schedule =
            compiled
                .plan
                .resolve_schedule(flow, config)
                .map_err(|err| match compiled.plan.flow_schedule(flow) {
                    Some(ScheduleSource::ConfigVar(var)) => ApiError::invalid(format!(
                        "`config.{var}` (the schedule of flow `{flow}`): {err}"
                    )),
                    _ => ApiError::invalid(format!("the schedule of flow `{flow}`: {err}")),
                })?;
        // An empty config value leaves this instance's flow unscheduled.
        if let Some(schedule) = schedule {
            specs.push(ScheduleSpec {
                flow_key: flow.to_string(),
                cron: schedule.expression().to_string(),
                timezone: schedule.timezone().to_string(),
                next_run_ms: schedule.next_after(now),
            });
        }
    }
    Ok(specs)
}

/// Makes the instance's schedule rows match it: its version's scheduled flows with its
/// config when it is enabled and deployed, none otherwise. Call after every change of
/// an instance's version, config, enabled flag or status.
pub async fn sync_instance(state: &AppState, instance: &Instance) -> Result<(), ApiError> {
    let specs = if instance.enabled && instance.status == InstanceStatus::Deployed {
        let compiled = integrations::instance_plan(state, instance).await?;
        specs(&compiled, &instance.config, now_ms())?
    } else {
        Vec::new()
    };
    state
        .store
        .set_schedules(&instance.tenant_id, &instance.id, &specs)
        .await?;
    Ok(())
}

/// Drops the instance's schedule rows (it is being removed).
pub async fn unschedule(state: &AppState, instance: &Instance) -> Result<(), ApiError> {
    state
        .store
        .set_schedules(&instance.tenant_id, &instance.id, &[])
        .await?;
    Ok(())
}

/// Starts the scheduler for the life of the process.
pub fn spawn(state: &AppState) {
    let state = state.clone();
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(state.config.schedule_tick);
        // After a stall, tick once and go on: the missed-run policy covers the gap.
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            if let Err(err) = tick(&state, now_ms()).await {
                tracing::warn!(error = %err.message, "the scheduler could not read due schedules");
            }
        }
    });
}

/// Queues a run for every schedule due at `now`; returns how many were queued (or
/// recorded as skipped).
pub async fn tick(state: &AppState, now: i64) -> Result<usize, ApiError> {
    let mut fired = 0;
    loop {
        let due = state.store.due_schedules(now, DUE_BATCH).await?;
        let full = due.len() == DUE_BATCH;
        for row in due {
            // One broken row (an instance whose integration no longer loads) must not
            // hold up the others.
            match fire(state, &row, now).await {
                Ok(true) => fired += 1,
                Ok(false) => {}
                Err(err) => tracing::warn!(
                    instance = %row.instance_id,
                    flow = %row.flow_key,
                    error = %err.message,
                    "a scheduled run could not be queued"
                ),
            }
        }
        if !full {
            return Ok(fired);
        }
    }
}

/// Claims one due row and queues its run; `false` when there was nothing to run.
async fn fire(state: &AppState, row: &Schedule, now: i64) -> Result<bool, ApiError> {
    let Some(due_ms) = row.next_run_ms else {
        return Ok(false);
    };
    let schedule = match CronSchedule::parse(&row.cron, Some(&row.timezone)) {
        Ok(schedule) => schedule,
        Err(err) => {
            // Rows hold only schedules that parsed when written; should one stop
            // parsing, park it instead of failing on it every tick.
            tracing::warn!(
                instance = %row.instance_id, flow = %row.flow_key, error = %err,
                "a stored schedule no longer parses; it is parked until the instance changes"
            );
            state.store.claim_schedule(row, None, now).await?;
            return Ok(false);
        }
    };
    let instance = state
        .store
        .get_instance(&row.tenant_id, &row.instance_id)
        .await?;
    let Some(instance) =
        instance.filter(|instance| instance.enabled && instance.status == InstanceStatus::Deployed)
    else {
        // Rows follow the instance (see `sync_instance`); this one was left behind.
        state
            .store
            .set_schedules(&row.tenant_id, &row.instance_id, &[])
            .await?;
        return Ok(false);
    };
    let (later, latest) = schedule.fires_between(due_ms, now, MISSED_LIMIT);
    let scheduled_ms = latest.unwrap_or(due_ms);
    if !state
        .store
        .claim_schedule(row, schedule.next_after(now), now)
        .await?
    {
        return Ok(false);
    }
    let compiled = integrations::instance_plan(state, &instance).await?;
    let body = json!({
        "scheduledAt": schedule.rfc3339(scheduled_ms),
        "cron": schedule.expression(),
        "timezone": schedule.timezone(),
        "missed": later,
    });
    let payload = Payload::host_json(
        (TRIGGER_HEADER, "schedule"),
        serde_json::to_vec(&body).map_err(ApiError::internal)?,
        now,
    );
    let enqueued = queue::enqueue(
        state,
        NewExecution {
            tenant_id: instance.tenant_id.clone(),
            instance_id: instance.id.clone(),
            flow_key: row.flow_key.clone(),
            trigger: TriggerKind::Schedule,
            payload,
            parent_id: None,
            replay_of: None,
            singleton: compiled
                .plan
                .flow_policy(&row.flow_key)
                .is_some_and(|policy| policy.singleton),
        },
    )
    .await?;
    match enqueued {
        Enqueued::Skipped { execution_id } => tracing::debug!(
            execution = %execution_id, flow = %row.flow_key,
            "scheduled run skipped: the previous run of this singleton flow is unfinished"
        ),
        Enqueued::Queued { execution_id } | Enqueued::Deduplicated { execution_id, .. } => {
            tracing::debug!(execution = %execution_id, flow = %row.flow_key, missed = later, "scheduled run queued");
        }
    }
    Ok(true)
}

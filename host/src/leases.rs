//! Execution leases: every `running` row carries a lease, which its run renews while
//! it is alive (the heartbeat, [`keep_while`]), and the sweep ([`spawn`]) ends runs
//! whose lease lapsed while the server is up: a run dropped with its task (a deploy
//! request whose client went away, a panic) or one whose end could not be stored.
//! Such a run is treated like one a crash interrupted (`ExecutionStore::
//! requeue_expired`): queued again after a backoff, up to the crash requeue cap;
//! instance event flows end `interrupted`. Start-up recovery (`server.rs`) is the
//! same with every lease taken as lapsed.

use std::future::Future;
use std::time::Duration;

use crate::app::AppState;
use crate::config::ServerConfig;
use crate::store::executions::CrashPolicy;
use crate::store::now_ms;

/// The lease a run takes, or renews to, now: `now + lease`.
pub fn lease_until(state: &AppState, now: i64) -> i64 {
    now.saturating_add(lease_ms(&state.config))
}

fn lease_ms(config: &ServerConfig) -> i64 {
    i64::try_from(config.execution_lease.as_millis()).unwrap_or(i64::MAX)
}

/// What lost runs become: the crash requeue cap and backoff of `sluice serve`.
pub fn crash_policy(config: &ServerConfig) -> CrashPolicy {
    CrashPolicy {
        max_requeues: i64::from(config.max_crash_requeues),
        // At most an hour, so the growing waits stay far from overflowing.
        backoff_ms: i64::try_from(config.crash_backoff.as_millis())
            .unwrap_or(i64::MAX)
            .min(3_600_000),
    }
}

/// Runs `run` (the run of execution `id`) while renewing the execution's lease every
/// quarter lease, so a run longer than its lease is not taken for lost. The renewal
/// lives and dies with `run`: when the run is dropped, the lease lapses and the sweep
/// finds it.
pub async fn keep_while<T>(state: &AppState, id: &str, run: impl Future<Output = T>) -> T {
    let every = state.config.execution_lease / 4;
    let heartbeat = async {
        loop {
            tokio::time::sleep(every).await;
            match state
                .store
                .renew_lease(id, lease_until(state, now_ms()))
                .await
            {
                Ok(true) => {}
                // Its row was ended or queued again by someone else (the sweep took
                // it for lost): the run goes on, but says so.
                Ok(false) => {
                    tracing::warn!(execution = %id, "the running execution's lease could not be renewed: it is no longer running");
                }
                Err(err) => {
                    tracing::error!(execution = %id, error = %err, "cannot renew the execution's lease");
                }
            }
        }
    };
    tokio::pin!(run);
    tokio::select! {
        output = &mut run => output,
        never = heartbeat => never,
    }
}

/// Ends the runs whose lease lapsed before now; returns how many it found.
pub async fn sweep(state: &AppState) -> usize {
    let now = now_ms();
    match state
        .store
        .requeue_expired(now, now, &crash_policy(&state.config))
        .await
    {
        Ok(done) => {
            if done.requeued > 0 {
                tracing::warn!(
                    requeued = done.requeued,
                    "running executions whose run was lost (lease lapsed) are queued again, after a backoff"
                );
            }
            for id in &done.failed {
                tracing::error!(execution = %id, "execution lost on every run: failed with host-crash-loop");
            }
            for id in &done.interrupted {
                tracing::error!(execution = %id, "instance event flow lost before it ended: failed as interrupted");
            }
            usize::try_from(done.requeued).unwrap_or(usize::MAX)
                + done.failed.len()
                + done.interrupted.len()
        }
        Err(err) => {
            tracing::error!(error = %err, "cannot sweep lapsed execution leases");
            0
        }
    }
}

/// Sweeps every half lease for the life of the process, so a lost run ends at most
/// about a lease and a half after its last renewal.
pub fn spawn(state: &AppState) {
    let state = state.clone();
    let every = (state.config.execution_lease / 2).max(Duration::from_millis(50));
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            sweep(&state).await;
        }
    });
}

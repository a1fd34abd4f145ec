//! Retention: finished executions (with their payloads, logs and stored results) and
//! finished component uploads older than the configured retention are deleted, hourly.

use std::time::Duration;

use crate::app::AppState;
use crate::store::now_ms;

const EVERY: Duration = Duration::from_secs(3600);

/// Deletes what is past retention now; returns how many executions went.
pub async fn sweep(state: &AppState) -> u64 {
    let retention_ms = i64::try_from(state.config.retention.as_millis()).unwrap_or(i64::MAX);
    let cutoff = now_ms().saturating_sub(retention_ms);
    match state.store.delete_uploads_finished_before(cutoff).await {
        Ok(deleted) if deleted > 0 => {
            tracing::info!(deleted, "retention removed old component uploads");
        }
        Ok(_) => {}
        Err(err) => tracing::error!(error = %err, "retention sweep of component uploads failed"),
    }
    match state.store.delete_executions_before(cutoff).await {
        Ok(deleted) => {
            if deleted > 0 {
                tracing::info!(deleted, "retention removed old executions");
            }
            deleted
        }
        Err(err) => {
            tracing::error!(error = %err, "retention sweep failed");
            0
        }
    }
}

/// Sweeps now and every hour for the life of the process.
pub fn spawn(state: &AppState) {
    let state = state.clone();
    tokio::spawn(async move {
        loop {
            sweep(&state).await;
            tokio::time::sleep(EVERY).await;
        }
    });
}

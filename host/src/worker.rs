//! The workers that drain the queue: each claims the oldest queued execution, runs it,
//! and claims the next; idle workers wait for a signal from the ingress (or poll, so
//! executions queued by another process or before a restart are found too).

use std::time::Duration;

use crate::app::AppState;
use crate::execution;
use crate::store::now_ms;

/// How often an idle worker looks at the queue without a signal.
const POLL: Duration = Duration::from_millis(500);

/// Starts `count` workers for the life of the process.
pub fn spawn(state: &AppState, count: usize) {
    for index in 0..count {
        let state = state.clone();
        tokio::spawn(async move { work(state, index).await });
    }
}

async fn work(state: AppState, index: usize) {
    loop {
        let now = now_ms();
        let lease = crate::leases::lease_until(&state, now);
        let claimed = match state.store.claim_next(now, lease).await {
            Ok(claimed) => claimed,
            Err(err) => {
                tracing::error!(worker = index, error = %err, "cannot claim from the queue");
                tokio::time::sleep(POLL).await;
                continue;
            }
        };
        let Some(execution) = claimed else {
            // Either a signal or the poll interval, whichever comes first.
            let _ = tokio::time::timeout(POLL, state.queue.wait()).await;
            continue;
        };
        let payload = match state
            .store
            .execution_payload(&execution.tenant_id, &execution.id)
            .await
        {
            Ok(Some(payload)) => payload,
            Ok(None) => {
                tracing::error!(execution = %execution.id, "queued execution without its payload");
                continue;
            }
            Err(err) => {
                tracing::error!(execution = %execution.id, error = %err, "cannot read the payload");
                continue;
            }
        };
        execution::run(&state, &execution, payload, None).await;
    }
}

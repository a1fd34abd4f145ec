//! Tenants share the executor fairly: a tenant with many CPU-bound executions takes
//! turns among them instead of queueing all of them ahead of another tenant.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use sluice_runtime::{ExecutionContext, Limits, Outcome, Runtime, RuntimeConfig};

/// Fuel each execution burns before it is stopped: many epoch ticks of guest code.
const WORK: u64 = 400_000_000;

fn of_tenant(tenant: &str, execution: String) -> ExecutionContext {
    ExecutionContext {
        tenant_id: tenant.into(),
        ..context(&execution)
    }
}

/// Runs `busy` spinning executions of one tenant and then one of another, each with
/// the same fuel, on one thread; returns who finished in what order.
async fn finishing_order(runtime: Runtime, busy: usize) -> Vec<String> {
    let spin = Arc::new(load(&runtime, "spin"));
    let (caps, _) = capabilities();
    // Fuel ends each run; the deadline is only there so that nothing hangs.
    let limits = Limits::default()
        .fuel(WORK)
        .timeout(Duration::from_secs(600));
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    let runs = (0..busy)
        .map(|index| ("busy", format!("busy{index}")))
        .chain([("quiet", "quiet".to_owned())]);
    for (tenant, name) in runs {
        let (runtime, spin, caps, limits, order) = (
            runtime.clone(),
            Arc::clone(&spin),
            caps.clone(),
            limits.clone(),
            Arc::clone(&order),
        );
        tasks.push(tokio::spawn(async move {
            let report = runtime
                .execute(
                    &spin,
                    action("run", "{}"),
                    of_tenant(tenant, name.clone()),
                    &caps,
                    &limits,
                )
                .await
                .expect("execution starts");
            assert_eq!(report.outcome, Outcome::OutOfFuel { limit: WORK });
            order.lock().expect("order").push(name);
        }));
        // Every busy execution is running before the quiet one starts.
        tokio::task::yield_now().await;
    }
    for task in tasks {
        task.await.expect("execution task");
    }
    order.lock().expect("order").clone()
}

#[tokio::test(flavor = "current_thread")]
async fn a_quiet_tenant_is_not_queued_behind_a_busy_ones_executions() {
    let runtime = Runtime::new(
        RuntimeConfig::default()
            .max_concurrency(8)
            .tenant_parallelism(1),
    )
    .expect("runtime");
    let order = finishing_order(runtime, 4).await;
    // With the same work as each busy execution and started last, the quiet tenant
    // gets every other turn and finishes first. Served first come, first served, it
    // would get one turn in five and finish last.
    assert_eq!(order.len(), 5);
    assert_eq!(order[0], "quiet", "{order:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_tenant_alone_runs_every_execution_to_its_exact_fuel() {
    let runtime = Runtime::new(
        RuntimeConfig::default()
            .max_concurrency(8)
            .tenant_parallelism(1),
    )
    .expect("runtime");
    // Without another tenant, the busy one's executions still all finish, each with
    // its exact fuel (asserted inside), however they were interleaved.
    let order = finishing_order(runtime, 3).await;
    assert_eq!(order.len(), 4);
}

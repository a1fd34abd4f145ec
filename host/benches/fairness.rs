//! Fairness between tenants: A floods a real `sluice serve` with asynchronous webhooks
//! while B sends a trickle; B's median latency under the flood against B's on an idle
//! server (target: within 5x). A measurement printed as a table, not a test.

#[path = "../tests/support/mod.rs"]
mod support;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use support::{
    Client, Server, Sink, deploy_sink_relay, execution_id_of, try_deliver, webhook_path,
};

/// How many executions each side sends.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    flood: usize,
    trickle: usize,
}

const FULL: Sizes = Sizes {
    flood: 10_000,
    trickle: 100,
};
const QUICK: Sizes = Sizes {
    flood: 1_000,
    trickle: 20,
};
/// Requests A keeps in flight: a busy sender with a bounded connection pool.
const FLOOD_IN_FLIGHT: usize = 32;
/// B's requests are spaced out, like a tenant with ordinary traffic.
const TRICKLE_SPACING: Duration = Duration::from_millis(10);
/// Each execution calls a loopback API that answers after this long: the work is the
/// slow third-party call typical of integrations, which holds a worker while it waits.
const API_DELAY: Duration = Duration::from_millis(20);
/// B starts once this fraction of A's flood has been accepted, so A has a backlog.
const TRICKLE_AFTER: f64 = 0.2;
/// B's median under the flood may be at most this many times its idle median.
const TARGET_RATIO: f64 = 5.0;
const IDLE_TIMEOUT: Duration = Duration::from_secs(900);

const USAGE: &str = "usage: cargo bench -p sluice --bench fairness [-- --quick]   \
    (or SLUICE_BENCH_QUICK=1; without --bench, as under `cargo test`, the run is quick)";

fn main() -> ExitCode {
    support::bench_main("fairness", USAGE, QUICK, FULL, run)
}

/// One execution as the API reports it, times in Unix milliseconds.
struct Timing {
    created: i64,
    started: i64,
    finished: i64,
    succeeded: bool,
}

impl Timing {
    fn latency(&self) -> i64 {
        self.finished - self.created
    }
}

fn ms(execution: &Value, field: &str) -> Result<i64, String> {
    let text = execution[field]
        .as_str()
        .ok_or_else(|| format!("no `{field}` in {execution}"))?;
    let time = humantime::parse_rfc3339_weak(text).map_err(|err| format!("{text}: {err}"))?;
    let since = time
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|err| err.to_string())?;
    i64::try_from(since.as_millis()).map_err(|err| err.to_string())
}

/// The timings of executions `ids` of the tenant behind `client` (all finished).
async fn timings(client: &Client, ids: &[String]) -> Result<Vec<Timing>, String> {
    let by_id: std::collections::HashMap<String, Value> = client
        .all_executions("")
        .await
        .into_iter()
        .filter_map(|execution| Some((execution["id"].as_str()?.to_string(), execution)))
        .collect();
    ids.iter()
        .map(|id| {
            let execution = by_id
                .get(id)
                .ok_or_else(|| format!("execution {id} is not listed"))?;
            Ok(Timing {
                created: ms(execution, "createdAt")?,
                started: ms(execution, "startedAt")?,
                finished: ms(execution, "finishedAt")?,
                succeeded: execution["status"] == "succeeded",
            })
        })
        .collect()
}

/// Sends one `{"n": n}` delivery; the execution id of its 202.
async fn send_one(http: &reqwest::Client, url: &str, n: usize) -> Result<String, String> {
    let body = serde_json::to_vec(&json!({"n": n})).map_err(|err| err.to_string())?;
    let reply = try_deliver(http, url, body)
        .await
        .map_err(|err| format!("webhook {n}: {err}"))?;
    if reply.status != 202 {
        return Err(format!("webhook {n}: {} {}", reply.status, reply.text));
    }
    execution_id_of(&reply).ok_or_else(|| format!("webhook {n}: a 202 without an execution id"))
}

/// A's flood: `count` deliveries, `FLOOD_IN_FLIGHT` at a time, as fast as they are
/// answered; `accepted` counts the 202s as they come.
async fn flood(
    url: String,
    count: usize,
    accepted: Arc<AtomicUsize>,
) -> Result<Vec<String>, String> {
    let http = reqwest::Client::new();
    let next = Arc::new(AtomicUsize::new(0));
    let mut senders = Vec::new();
    for _ in 0..FLOOD_IN_FLIGHT {
        let (http, url, next, accepted) = (
            http.clone(),
            url.clone(),
            Arc::clone(&next),
            Arc::clone(&accepted),
        );
        senders.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                if n >= count {
                    return Ok::<_, String>(ids);
                }
                ids.push(send_one(&http, &url, n).await?);
                accepted.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    let mut ids = Vec::with_capacity(count);
    for sender in senders {
        ids.extend(sender.await.map_err(|err| err.to_string())??);
    }
    Ok(ids)
}

/// B's trickle: `count` deliveries started `TRICKLE_SPACING` apart, whatever the
/// answers take.
async fn trickle(url: &str, count: usize) -> Result<Vec<String>, String> {
    let http = reqwest::Client::new();
    let mut ticks = tokio::time::interval(TRICKLE_SPACING);
    let mut sends = Vec::new();
    for n in 0..count {
        ticks.tick().await;
        let (http, url) = (http.clone(), url.to_string());
        sends.push(tokio::spawn(async move { send_one(&http, &url, n).await }));
    }
    let mut ids = Vec::with_capacity(count);
    for send in sends {
        ids.push(send.await.map_err(|err| err.to_string())??);
    }
    Ok(ids)
}

/// A table row; returns the median latency.
fn row(phase: &str, tenant: &str, timings: &[Timing]) -> i64 {
    let mut latencies: Vec<i64> = timings.iter().map(Timing::latency).collect();
    latencies.sort_unstable();
    let failed = timings.iter().filter(|timing| !timing.succeeded).count();
    let median = support::nearest_rank(&latencies, 0.5);
    println!(
        "{phase:<6} {tenant:<7} {:>6} {median:>10} {:>8} {:>8} {failed:>7}",
        timings.len(),
        support::nearest_rank(&latencies, 0.9),
        support::nearest_rank(&latencies, 0.99),
    );
    median
}

async fn run(sizes: Sizes) -> Result<(), String> {
    let api = Sink::start(API_DELAY).await;
    let server = Server::start_with(&["--webhook-rate-limit", "0"]);
    let a = server.tenant("Flooder");
    let b = server.tenant("Neighbour");
    let url_a = format!(
        "{}{}",
        server.url,
        webhook_path(&deploy_sink_relay(&a, &api.url).await, "relay")
    );
    let url_b = format!(
        "{}{}",
        server.url,
        webhook_path(&deploy_sink_relay(&b, &api.url).await, "relay")
    );

    // Warm-up, not measured: first runs of each instance load its components.
    flood(url_a.clone(), 20, Arc::new(AtomicUsize::new(0))).await?;
    trickle(&url_b, 20).await?;
    a.wait_until_idle(IDLE_TIMEOUT).await;
    b.wait_until_idle(IDLE_TIMEOUT).await;

    // Idle: B alone.
    let idle_ids = trickle(&url_b, sizes.trickle).await?;
    b.wait_until_idle(IDLE_TIMEOUT).await;
    let b_idle = timings(&b, &idle_ids).await?;

    // Flood: B's trickle starts once A has a head start.
    let accepted = Arc::new(AtomicUsize::new(0));
    let flooding = tokio::spawn(flood(url_a.clone(), sizes.flood, Arc::clone(&accepted)));
    let head_start = (sizes.flood as f64 * TRICKLE_AFTER) as usize;
    while accepted.load(Ordering::SeqCst) < head_start && !flooding.is_finished() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let b_flood_ids = trickle(&url_b, sizes.trickle).await?;
    let a_ids = flooding.await.map_err(|err| err.to_string())??;
    a.wait_until_idle(IDLE_TIMEOUT).await;
    b.wait_until_idle(IDLE_TIMEOUT).await;
    let b_flood = timings(&b, &b_flood_ids).await?;
    let a_flood = timings(&a, &a_ids).await?;

    println!(
        "fairness: tenant A floods {} asynchronous webhooks ({FLOOD_IN_FLIGHT} in flight), \
         tenant B sends {} ({} ms apart) once A has {head_start} accepted",
        sizes.flood,
        sizes.trickle,
        TRICKLE_SPACING.as_millis(),
    );
    println!(
        "each execution: hello.whoami, then http.request to a loopback API that answers \
         after {} ms; `sluice serve` defaults with --webhook-rate-limit 0; {} build, {} CPUs",
        API_DELAY.as_millis(),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        std::thread::available_parallelism().map_or(0, usize::from),
    );
    println!(
        "latency = finishedAt - createdAt from the executions API\n\
         {:<6} {:<7} {:>6} {:>10} {:>8} {:>8} {:>7}",
        "phase", "tenant", "count", "median ms", "p90 ms", "p99 ms", "failed"
    );
    let idle_median = row("idle", "B", &b_idle);
    let flood_median = row("flood", "B", &b_flood);
    row("flood", "A", &a_flood);

    let ratio = flood_median as f64 / idle_median.max(1) as f64;
    println!(
        "B median, flood / idle: {ratio:.2}x (target <= {TARGET_RATIO}x: {})",
        if ratio <= TARGET_RATIO {
            "met"
        } else {
            "MISSED"
        }
    );
    // How much of A was waiting when B's first execution arrived: what B competed with.
    let b_first = b_flood
        .iter()
        .map(|timing| timing.created)
        .min()
        .unwrap_or(0);
    let backlog = a_flood
        .iter()
        .filter(|timing| timing.created <= b_first && timing.started > b_first)
        .count();
    let a_first = a_flood
        .iter()
        .map(|timing| timing.created)
        .min()
        .unwrap_or(0);
    let a_last = a_flood
        .iter()
        .map(|timing| timing.finished)
        .max()
        .unwrap_or(0);
    let drain = Duration::from_millis(u64::try_from(a_last - a_first).unwrap_or(0));
    println!(
        "A: {backlog} queued when B's first arrived; {} executions from first accepted to \
         last finished in {:.1} s = {:.0} executions/s",
        a_flood.len(),
        drain.as_secs_f64(),
        a_flood.len() as f64 / drain.as_secs_f64().max(0.001),
    );
    let failed = [&b_idle, &b_flood, &a_flood]
        .iter()
        .map(|timings| timings.iter().filter(|timing| !timing.succeeded).count())
        .sum::<usize>();
    if failed > 0 {
        return Err(format!("{failed} executions failed"));
    }
    Ok(())
}

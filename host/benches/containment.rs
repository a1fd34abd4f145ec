//! Containment under attack: how much one hostile tenant slows another on a real
//! `sluice serve`. Tenant B calls its synchronous webhook back to back while idle, then
//! while tenant A keeps a compile bomb compiling and three of each of issue 10's
//! hostile flows (body bomb, fields bomb, state flood) and of a CPU-bound spin running;
//! the phases alternate. Run side by side on a server where tenants do not take turns
//! at the executor (the baseline), one where a tenant's executions take as many turns
//! as there are cores, and the default (half the cores). A measurement
//! printed as a table, not a test (target: B's p99 under attack below 100 ms).

#[path = "../tests/support/mod.rs"]
mod support;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use support::hostile::{ATTACK, compile_bomb, deploy_evil, deploy_good, flow_key};
use support::{Client, Server, execution_id_of, try_deliver, webhook_url};

/// How long each phase lasts and how many rounds of (idle, attack) run.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    phase: Duration,
    rounds: usize,
}

const FULL: Sizes = Sizes {
    phase: Duration::from_secs(20),
    rounds: 3,
};
const QUICK: Sizes = Sizes {
    phase: Duration::from_secs(5),
    rounds: 1,
};
/// Concurrent runs of each hostile flow kept going during an attack phase.
const RUNS_PER_GUEST: usize = 3;
/// B's target: p99 under attack.
const TARGET_P99: Duration = Duration::from_millis(100);
/// The compile worker's CPU limit: short enough that an attempt in flight when an
/// attack phase ends is over before the next idle phase starts.
const COMPILE_CPU_SECONDS: &str = "5";
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

const USAGE: &str = "usage: cargo bench -p sluice --bench containment [-- --quick]   \
    (or SLUICE_BENCH_QUICK=1; without --bench, as under `cargo test`, the run is quick)";

fn main() -> ExitCode {
    support::bench_main("containment", USAGE, QUICK, FULL, run)
}

/// B's calls for `phase`, one after another; each call's latency, or the first error.
async fn call_for(url: &str, phase: Duration) -> Result<Vec<Duration>, String> {
    let http = reqwest::Client::new();
    let mut latencies = Vec::new();
    let end = Instant::now() + phase;
    while Instant::now() < end {
        let started = Instant::now();
        let reply = try_deliver(&http, url, b"{}".to_vec())
            .await
            .map_err(|err| format!("B's webhook: {err}"))?;
        latencies.push(started.elapsed());
        if reply.status != 200 {
            return Err(format!("B's webhook: {} {}", reply.status, reply.text));
        }
    }
    Ok(latencies)
}

/// What an attack phase made A do.
#[derive(Default)]
struct Attack {
    executions: AtomicUsize,
    compiles_refused: AtomicUsize,
}

/// Keeps one hostile flow running: trigger, wait for the end, again, until `stop`.
async fn keep_running(
    client: Client,
    url: String,
    stop: Arc<AtomicBool>,
    attack: Arc<Attack>,
) -> Result<(), String> {
    let http = reqwest::Client::new();
    while !stop.load(Ordering::SeqCst) {
        let reply = try_deliver(&http, &url, b"{}".to_vec())
            .await
            .map_err(|err| format!("A's webhook: {err}"))?;
        let id = execution_id_of(&reply)
            .ok_or_else(|| format!("A's webhook: {} {}", reply.status, reply.text))?;
        let execution = client.finished_execution(&id).await;
        if execution["status"] != "failed" {
            return Err(format!("a hostile execution did not fail: {execution}"));
        }
        attack.executions.fetch_add(1, Ordering::SeqCst);
    }
    Ok(())
}

/// Keeps the compile bomb compiling: upload, expect the 422, again, until `stop`.
async fn keep_compiling(
    client: Client,
    bomb: Arc<Vec<u8>>,
    stop: Arc<AtomicBool>,
    attack: Arc<Attack>,
) -> Result<(), String> {
    while !stop.load(Ordering::SeqCst) {
        let reply = client
            .post_bytes("/v1/components", "application/wasm", bomb.to_vec())
            .await;
        if reply.status != 422 || reply.body["error"]["code"] != "compile-limit" {
            return Err(format!("the compile bomb: {} {}", reply.status, reply.text));
        }
        attack.compiles_refused.fetch_add(1, Ordering::SeqCst);
    }
    Ok(())
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Prints a row; returns (p50, p99).
fn row(setup: &str, phase: &str, latencies: &mut [Duration]) -> (Duration, Duration) {
    latencies.sort_unstable();
    let (p50, p90, p99) = (
        support::nearest_rank(latencies, 0.5),
        support::nearest_rank(latencies, 0.9),
        support::nearest_rank(latencies, 0.99),
    );
    println!(
        "{setup:<8} {phase:<9} {:>7} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
        latencies.len(),
        ms(p50),
        ms(p90),
        ms(p99),
        ms(latencies.last().copied().unwrap_or_default()),
    );
    (p50, p99)
}

/// A server configuration measured: its name and its extra `sluice serve` flags.
struct Setup {
    name: &'static str,
    flags: Vec<String>,
}

/// The baseline first: with more turns per tenant than the attacker has executions,
/// every execution competes with every other for the executor, as before tenants took
/// turns. Then as many turns as cores (a tenant may fill the executor), then the
/// server's default (half the cores).
fn setups() -> Vec<Setup> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let turns = |count: usize| vec!["--tenant-parallelism".to_string(), count.to_string()];
    vec![
        Setup {
            name: "no turns",
            flags: turns(1000),
        },
        Setup {
            name: "cores",
            flags: turns(cores),
        },
        Setup {
            name: "default",
            flags: Vec::new(),
        },
    ]
}

/// The CPU-bound attacker added to issue 10's attack: it never calls the host, so
/// only the executor's scheduling stands between it and B. Its runs end at the async
/// time limit below.
const SPIN: (&str, &str) = ("spin", "{}");
const SPIN_SECONDS: &str = "3";

/// What one setup measured.
struct Measured {
    idle: Vec<Duration>,
    attacked: Vec<Duration>,
    attack: Arc<Attack>,
}

async fn measure(sizes: Sizes, setup: &Setup) -> Result<Measured, String> {
    let mut flags = vec![
        "--webhook-rate-limit",
        "0",
        "--compile-cpu-seconds",
        COMPILE_CPU_SECONDS,
        "--async-time-limit-secs",
        SPIN_SECONDS,
    ];
    flags.extend(setup.flags.iter().map(String::as_str));
    let server = Server::start_with(&flags);
    let b = server.tenant("Neighbour");
    let a = server.tenant("Attacker");
    let url_b = deploy_good(&b).await;
    let guests: Vec<(&str, &str)> = ATTACK.iter().copied().chain([SPIN]).collect();
    let instance = deploy_evil(&a, &guests).await;
    let bomb = Arc::new(compile_bomb());

    // Warm-up, not measured: the first runs load the components.
    call_for(&url_b, Duration::from_millis(500)).await?;

    let mut idle = Vec::new();
    let mut attacked = Vec::new();
    let attack = Arc::new(Attack::default());
    for _ in 0..sizes.rounds {
        idle.extend(call_for(&url_b, sizes.phase).await?);

        let stop = Arc::new(AtomicBool::new(false));
        let mut attackers = Vec::new();
        attackers.push(tokio::spawn(keep_compiling(
            a.clone(),
            Arc::clone(&bomb),
            Arc::clone(&stop),
            Arc::clone(&attack),
        )));
        for (guest, _) in &guests {
            for _ in 0..RUNS_PER_GUEST {
                attackers.push(tokio::spawn(keep_running(
                    a.clone(),
                    webhook_url(&instance, &flow_key(guest)),
                    Arc::clone(&stop),
                    Arc::clone(&attack),
                )));
            }
        }
        // The attack is under way once its first requests are in.
        tokio::time::sleep(Duration::from_millis(200)).await;
        attacked.extend(call_for(&url_b, sizes.phase).await?);
        stop.store(true, Ordering::SeqCst);
        for attacker in attackers {
            attacker.await.map_err(|err| err.to_string())??;
        }
        a.wait_until_idle(IDLE_TIMEOUT).await;
    }
    Ok(Measured {
        idle,
        attacked,
        attack,
    })
}

async fn run(sizes: Sizes) -> Result<(), String> {
    let setups = setups();
    let mut results = Vec::new();
    for setup in &setups {
        results.push(measure(sizes, setup).await?);
    }

    println!(
        "containment: tenant B calls a synchronous webhook (hello.whoami) back to back, \
         {} s idle then {} s under attack, {} round(s), on each setup in turn",
        sizes.phase.as_secs(),
        sizes.phase.as_secs(),
        sizes.rounds,
    );
    println!(
        "attack by tenant A: the compile bomb uploaded again and again \
         (--compile-cpu-seconds {COMPILE_CPU_SECONDS}), and {RUNS_PER_GUEST} runs each of {}, {} \
         (CPU-bound, ended by --async-time-limit-secs {SPIN_SECONDS}) kept going",
        ATTACK
            .iter()
            .map(|(guest, _)| *guest)
            .collect::<Vec<_>>()
            .join(", "),
        SPIN.0,
    );
    println!(
        "`sluice serve` defaults with --webhook-rate-limit 0; {} build, {} CPUs shared by \
         the server, its compile worker and this client",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        std::thread::available_parallelism().map_or(0, usize::from),
    );
    println!(
        "{:<8} {:<9} {:>7} {:>9} {:>9} {:>9} {:>9}",
        "setup", "phase", "calls", "p50 ms", "p90 ms", "p99 ms", "max ms"
    );
    let mut attack_p99s = Vec::new();
    for (setup, measured) in setups.iter().zip(&mut results) {
        let (idle_p50, idle_p99) = row(setup.name, "idle", &mut measured.idle);
        let (attack_p50, attack_p99) = row(setup.name, "attack", &mut measured.attacked);
        println!(
            "{:<8} ratio attack/idle: p50 {:.2}x, p99 {:.2}x; A: {} hostile executions \
             ended, {} compiles refused",
            setup.name,
            attack_p50.as_secs_f64() / idle_p50.as_secs_f64().max(1e-6),
            attack_p99.as_secs_f64() / idle_p99.as_secs_f64().max(1e-6),
            measured.attack.executions.load(Ordering::SeqCst),
            measured.attack.compiles_refused.load(Ordering::SeqCst),
        );
        attack_p99s.push(attack_p99);
    }
    if let [baseline, .., default] = attack_p99s[..] {
        println!(
            "B's p99 under attack, default vs no turns: {:.2}x",
            default.as_secs_f64() / baseline.as_secs_f64().max(1e-6)
        );
        println!(
            "B's p99 under attack on the default server: {:.1} ms (target < {} ms: {})",
            ms(default),
            TARGET_P99.as_millis(),
            if default < TARGET_P99 {
                "met"
            } else {
                "MISSED"
            }
        );
    }
    Ok(())
}

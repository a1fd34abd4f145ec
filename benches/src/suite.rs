//! The protocol every contender of the side-by-side suite (`benches/run.sh`) follows,
//! for the contenders measured from Rust in this crate (Sluice, the raw-wasmtime floor,
//! a process per execution under bubblewrap). The Extism and JavaScript contenders
//! implement the same protocol in their own languages (`benches/contenders/`) and print
//! the same JSON fields.
//!
//! 1. Setup, untimed: compile the job once, warm the engine.
//! 2. Latency: `warmup` executions, then `samples` executions one after another on one
//!    thread, each timed on its own; nearest-rank median, p90, p99.
//! 3. Throughput: for each thread count, that many threads run executions back to back
//!    for `seconds`; executions per second = all executions / elapsed time.
//! 4. Peak RSS of the contender's process (`VmHWM`), after all of the above.

use std::sync::Barrier;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{Samples, Summary};

/// How much each contender runs. The orchestrator passes the same values to all.
#[derive(Debug, Clone, PartialEq)]
pub struct Protocol {
    pub warmup: usize,
    pub samples: usize,
    pub seconds: f64,
    pub threads: Vec<usize>,
}

impl Protocol {
    /// `benches/run.sh` (full run).
    pub fn full() -> Self {
        Protocol {
            warmup: 500,
            samples: 5_000,
            seconds: 5.0,
            threads: vec![1, 2],
        }
    }

    /// `benches/run.sh --quick`, and the smoke run of `cargo test --all-targets`.
    pub fn quick() -> Self {
        Protocol {
            warmup: 50,
            samples: 500,
            seconds: 1.0,
            threads: vec![1, 2],
        }
    }

    /// Applies `--warmup N`, `--samples N`, `--seconds S`, `--threads 1,2` from `args`
    /// and returns the arguments it did not recognise.
    pub fn apply(&mut self, args: Vec<String>) -> Result<Vec<String>, String> {
        let mut rest = Vec::new();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
            match arg.as_str() {
                "--warmup" => self.warmup = positive(&value()?)?,
                "--samples" => self.samples = positive(&value()?)?,
                "--seconds" => {
                    let text = value()?;
                    self.seconds = match text.parse::<f64>() {
                        Ok(seconds) if seconds > 0.0 && seconds.is_finite() => seconds,
                        _ => {
                            return Err(format!("--seconds needs a positive number, not `{text}`"));
                        }
                    }
                }
                "--threads" => {
                    self.threads = value()?
                        .split(',')
                        .map(positive)
                        .collect::<Result<_, _>>()?
                }
                _ => rest.push(arg),
            }
        }
        Ok(rest)
    }
}

/// Parses a positive integer.
pub fn positive(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("expected a positive number, not `{text}`")),
    }
}

/// Runs `warmup` untimed executions, then times `samples` executions one by one.
pub fn latency(
    warmup: usize,
    samples: usize,
    mut execute: impl FnMut() -> Result<(), String>,
) -> Result<Summary, String> {
    for _ in 0..warmup {
        execute()?;
    }
    let mut timed = Samples::with_capacity(samples);
    for _ in 0..samples {
        let started = Instant::now();
        execute()?;
        timed.push(started.elapsed());
    }
    Ok(timed.summary())
}

/// Executions per second on `threads` threads running back to back for `seconds`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub threads: usize,
    pub seconds: f64,
    pub executions: u64,
    pub per_second: f64,
}

impl Rate {
    pub fn to_json(&self) -> Value {
        json!({
            "threads": self.threads,
            "seconds": self.seconds,
            "executions": self.executions,
            "per_second": self.per_second,
        })
    }
}

/// Starts `threads` threads; each calls `setup` (untimed: a thread's own executor,
/// say), waits for the others, then runs the execution `setup` returned back to back
/// for `seconds`.
pub fn throughput<S, E>(threads: usize, seconds: f64, setup: S) -> Result<Rate, String>
where
    S: Fn() -> Result<E, String> + Sync,
    E: FnMut() -> Result<(), String>,
{
    let ready = Barrier::new(threads + 1);
    let done = AtomicU64::new(0);
    let window = Duration::from_secs_f64(seconds);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| -> Result<(), String> {
                    let prepared = setup();
                    ready.wait();
                    let mut execute = prepared?;
                    let deadline = Instant::now() + window;
                    while Instant::now() < deadline {
                        execute()?;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(())
                })
            })
            .collect();
        ready.wait();
        let started = Instant::now();
        for worker in workers {
            worker
                .join()
                .map_err(|_| "a throughput thread panicked".to_string())??;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let executions = done.load(Ordering::Relaxed);
        Ok(Rate {
            threads,
            seconds: elapsed,
            executions,
            per_second: executions as f64 / elapsed,
        })
    })
}

/// A `/proc/self/status` field in KiB (`VmHWM`, `VmRSS`); 0 where unavailable.
pub fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                line.strip_prefix(field)?
                    .strip_prefix(':')?
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse()
                    .ok()
            })
        })
        .unwrap_or(0)
}

/// Peak resident set size of this process, in KiB.
pub fn peak_rss_kib() -> u64 {
    status_kib("VmHWM")
}

/// Resident set size of this process now, in KiB.
pub fn rss_kib() -> u64 {
    status_kib("VmRSS")
}

/// What a contender measured, as the JSON line the orchestrator collects.
pub struct ContenderLine<'a> {
    pub contender: &'a str,
    pub label: &'a str,
    pub what: &'a str,
    pub version: String,
    pub setup: Duration,
    pub protocol: &'a Protocol,
    pub latency: Summary,
    pub rates: Vec<Rate>,
    pub peak_rss_kib: u64,
    pub rss_source: &'a str,
}

impl ContenderLine<'_> {
    pub fn to_json(&self) -> Value {
        json!({
            "kind": "contender",
            "contender": self.contender,
            "label": self.label,
            "what": self.what,
            "version": self.version,
            "setup_ms": self.setup.as_secs_f64() * 1e3,
            "warmup": self.protocol.warmup,
            "samples": self.latency.count,
            "median_us": self.latency.median_us,
            "p90_us": self.latency.p90_us,
            "p99_us": self.latency.p99_us,
            "mean_us": self.latency.mean_us,
            "throughput": self.rates.iter().map(Rate::to_json).collect::<Vec<_>>(),
            "peak_rss_kib": self.peak_rss_kib,
            "rss_source": self.rss_source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|arg| arg.to_string()).collect()
    }

    #[test]
    fn protocol_flags_are_applied_and_the_rest_returned() {
        let mut protocol = Protocol::quick();
        let rest = protocol
            .apply(strings(&[
                "sluice",
                "--samples",
                "7",
                "--seconds",
                "0.5",
                "--threads",
                "1,2,4",
                "--bench",
            ]))
            .unwrap();
        assert_eq!(rest, strings(&["sluice", "--bench"]));
        assert_eq!(protocol.samples, 7);
        assert_eq!(protocol.seconds, 0.5);
        assert_eq!(protocol.threads, vec![1, 2, 4]);
        assert_eq!(protocol.warmup, Protocol::quick().warmup);
        assert!(
            Protocol::quick()
                .apply(strings(&["--samples", "0"]))
                .is_err()
        );
        assert!(
            Protocol::quick()
                .apply(strings(&["--seconds", "-1"]))
                .is_err()
        );
        assert!(Protocol::quick().apply(strings(&["--threads"])).is_err());
    }

    #[test]
    fn latency_counts_only_the_timed_executions() {
        let mut calls = 0;
        let summary = latency(3, 5, || {
            calls += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(calls, 8);
        assert_eq!(summary.count, 5);
        assert!(latency(0, 1, || Err("boom".into())).is_err());
    }

    #[test]
    fn throughput_counts_every_thread() {
        let rate = throughput(2, 0.05, || Ok(|| Ok(()))).unwrap();
        assert_eq!(rate.threads, 2);
        assert!(rate.executions > 0);
        assert!(rate.seconds > 0.0);
        let failed = throughput(1, 0.05, || {
            Err::<fn() -> Result<(), String>, _>("no".into())
        });
        assert!(failed.is_err());
    }

    #[test]
    fn reads_this_process_memory() {
        // The current RSS first: the peak read after it can only be as large (other
        // test threads allocate meanwhile, so the other order races).
        let rss = rss_kib();
        let peak = peak_rss_kib();
        assert!(rss > 0);
        assert!(peak >= rss, "peak {peak} KiB < current {rss} KiB");
    }
}

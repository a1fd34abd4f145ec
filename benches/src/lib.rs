//! Helpers shared by the Sluice benchmarks (`benches/*.rs`): run options, latency
//! statistics and a description of the machine the numbers come from.
//!
//! The benchmarks are plain binaries (`harness = false`) rather than criterion groups
//! so that several variants can be interleaved round by round in one process: noise
//! from a shared machine then hits every variant alike, and the ratio between them is
//! what the benchmarks report.
//!
//! [`floor`] is the raw-wasmtime floor the Sluice measurements are compared with;
//! [`suite`] and [`report`] serve the side-by-side contender suite (`benches/run.sh`).

pub mod floor;
pub mod report;
pub mod suite;

use std::time::Duration;

use sluice_runtime::{LogRecord, LogSink};

/// The bytes of example guest `name` (built on first use).
pub fn example_bytes(name: &str) -> Result<Vec<u8>, String> {
    let path = sluice_runtime::guest_build::example(name).map_err(|err| err.to_string())?;
    std::fs::read(&path).map_err(|err| format!("cannot read {}: {err}", path.display()))
}

/// Discards every log line, so that the cost of storing logs is not measured.
pub struct DiscardLog;

impl LogSink for DiscardLog {
    fn write(&self, _record: LogRecord) {}
}

/// How many iterations a benchmark runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Iterations per variant before measuring (not recorded).
    pub warmup: usize,
    /// Measured rounds; each round runs every variant once, in alternating order.
    pub rounds: usize,
    /// Iterations per variant per round.
    pub iterations: usize,
}

impl Options {
    /// The full run.
    pub const FULL: Options = Options {
        warmup: 2_000,
        rounds: 10,
        iterations: 2_000,
    };

    /// A smoke run: enough to see the order of magnitude, not for reporting.
    pub const QUICK: Options = Options {
        warmup: 200,
        rounds: 4,
        iterations: 250,
    };

    /// Reads the command line (`--quick`, `--warmup N`, `--rounds N`, `--iterations N`)
    /// and the environment (`SLUICE_BENCH_QUICK=1`).
    ///
    /// `cargo bench` passes `--bench`; without it (`cargo test --all-targets`, or the
    /// binary run by hand) the run is [`Options::QUICK`], as criterion does in test mode.
    pub fn from_env() -> Result<Options, String> {
        let quick_env = std::env::var("SLUICE_BENCH_QUICK")
            .is_ok_and(|value| !matches!(value.as_str(), "" | "0"));
        Self::parse(std::env::args().skip(1).collect(), quick_env)
    }

    fn parse(args: Vec<String>, quick: bool) -> Result<Options, String> {
        let bench_mode = args.iter().any(|arg| arg == "--bench");
        let mut options = if quick || !bench_mode {
            Options::QUICK
        } else {
            Options::FULL
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let mut number = |name: &str| -> Result<usize, String> {
                let value = args
                    .next()
                    .ok_or_else(|| format!("{name} needs a number"))?;
                match value.parse::<usize>() {
                    Ok(n) if n > 0 => Ok(n),
                    _ => Err(format!("{name} needs a positive number, not `{value}`")),
                }
            };
            match arg.as_str() {
                "--bench" => {}
                "--quick" => options = Options::QUICK,
                "--warmup" => options.warmup = number("--warmup")?,
                "--rounds" => options.rounds = number("--rounds")?,
                "--iterations" => options.iterations = number("--iterations")?,
                "-h" | "--help" => return Err(USAGE.to_string()),
                other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
            }
        }
        Ok(options)
    }
}

const USAGE: &str = "usage: cargo bench -p sluice-benches --bench <name> -- \
    [--quick] [--warmup N] [--rounds N] [--iterations N]   (or SLUICE_BENCH_QUICK=1)";

/// Latency samples of one variant, in nanoseconds.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    nanos: Vec<u64>,
}

impl Samples {
    pub fn with_capacity(capacity: usize) -> Self {
        Samples {
            nanos: Vec::with_capacity(capacity),
        }
    }

    pub fn push(&mut self, elapsed: Duration) {
        self.nanos
            .push(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
    }

    pub fn len(&self) -> usize {
        self.nanos.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nanos.is_empty()
    }

    /// Order statistics of the samples so far.
    pub fn summary(&self) -> Summary {
        let mut sorted = self.nanos.clone();
        sorted.sort_unstable();
        let sum: u128 = sorted.iter().map(|&n| u128::from(n)).sum();
        let mean = if sorted.is_empty() {
            0.0
        } else {
            sum as f64 / sorted.len() as f64
        };
        Summary {
            count: sorted.len(),
            median_us: percentile(&sorted, 50.0) / 1e3,
            p90_us: percentile(&sorted, 90.0) / 1e3,
            p99_us: percentile(&sorted, 99.0) / 1e3,
            mean_us: mean / 1e3,
            min_us: sorted.first().map_or(0.0, |&n| n as f64 / 1e3),
        }
    }
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[u64], pct: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((pct / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64
}

/// Order statistics of a set of samples, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub count: usize,
    pub median_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub mean_us: f64,
    pub min_us: f64,
}

/// The CPU model and core counts, from `/proc/cpuinfo` where available.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key.trim() == "model name").then(|| value.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let processors = cpuinfo
        .lines()
        .filter(|line| line.starts_with("processor"))
        .count();
    let available = std::thread::available_parallelism().map_or(0, usize::from);
    format!("{model}, {processors} logical CPUs ({available} available to this process)")
}

/// The version of `package` recorded in the workspace's `Cargo.lock` (the first entry
/// of that name).
pub fn locked_version(lockfile: &str, package: &str) -> Option<String> {
    let wanted = format!("name = \"{package}\"");
    let mut lines = lockfile.lines();
    while let Some(line) = lines.next() {
        if line.trim() == wanted {
            let version = lines
                .next()?
                .trim()
                .strip_prefix("version = \"")?
                .strip_suffix('"')?;
            return Some(version.to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|arg| arg.to_string()).collect()
    }

    #[test]
    fn options_from_arguments() {
        assert_eq!(Options::parse(args(&["--bench"]), false), Ok(Options::FULL));
        assert_eq!(
            Options::parse(args(&["--bench", "--quick"]), false),
            Ok(Options::QUICK)
        );
        assert_eq!(Options::parse(args(&["--bench"]), true), Ok(Options::QUICK));
        // Without `--bench` the binary runs as a test (`cargo test --all-targets`): quick.
        assert_eq!(Options::parse(args(&[]), false), Ok(Options::QUICK));
        let custom = Options::parse(
            args(&["--bench", "--rounds", "3", "--iterations", "10"]),
            false,
        )
        .unwrap();
        assert_eq!(
            (custom.rounds, custom.iterations, custom.warmup),
            (3, 10, Options::FULL.warmup)
        );
        assert!(Options::parse(args(&["--rounds", "0"]), false).is_err());
        assert!(Options::parse(args(&["--frobnicate"]), false).is_err());
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut samples = Samples::default();
        for micros in 1..=100 {
            samples.push(Duration::from_micros(micros));
        }
        let summary = samples.summary();
        assert_eq!(summary.count, 100);
        assert_eq!(summary.median_us, 50.0);
        assert_eq!(summary.p90_us, 90.0);
        assert_eq!(summary.p99_us, 99.0);
        assert_eq!(summary.min_us, 1.0);
        assert!((summary.mean_us - 50.5).abs() < 1e-9);
    }

    #[test]
    fn reads_a_locked_version() {
        let lock = "[[package]]\nname = \"wasmtime-wasi\"\nversion = \"1.0.0\"\n\n[[package]]\nname = \"wasmtime\"\nversion = \"48.0.8\"\n";
        assert_eq!(locked_version(lock, "wasmtime").as_deref(), Some("48.0.8"));
        assert_eq!(locked_version(lock, "tokio"), None);
    }
}

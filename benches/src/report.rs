//! The tables of the side-by-side suite (`benches/run.sh`), rendered from the JSON
//! lines its contenders print:
//!
//! - `{"kind":"contender", ...}`: one per contender (see [`crate::suite`] and
//!   `benches/contenders/`): latency, throughput, peak RSS.
//! - `{"kind":"cold", ...}`: one per component and cold path (`contenders cold`).
//! - `{"kind":"inflight", ...}`: executions in flight at once (`contenders inflight`).
//!
//! Ratios are always "how many times better Sluice is": a contender's median over
//! Sluice's, Sluice's executions per second over the contender's, a contender's RSS over
//! Sluice's. Targets are reported, never asserted.

use std::fmt::Write as _;

use serde_json::Value;

/// Sluice cold start over the raw-wasmtime floor (medians): at most this.
pub const TARGET_FLOOR_RATIO: f64 = 1.5;
/// How many times faster than a new Node `vm` context Sluice should be: at least this.
pub const TARGET_VM_FACTOR: f64 = 10.0;
/// ... than a new isolated-vm isolate or a sandboxed process: at least this.
pub const TARGET_ISOLATE_PROCESS_FACTOR: f64 = 100.0;
/// Restart to first execution of a precompiled component, in ms: under this.
pub const TARGET_RESTART_MS: f64 = 5.0;

/// Per-execution medians the guests in other languages must stay under, in µs (issue
/// 14): a TypeScript guest and an inline code step 1 ms, a Python guest 2 ms.
pub const TARGET_GUEST_MEDIAN_US: &[(&str, f64)] = &[
    ("sluice-ts", 1000.0),
    ("sluice-py", 2000.0),
    ("sluice-code", 1000.0),
];

/// The order of the contenders in the table; others follow in input order.
const ORDER: &[&str] = &[
    "sluice",
    "sluice-ts",
    "sluice-py",
    "sluice-code",
    "floor",
    "extism",
    "vm",
    "isolated-vm",
    "bwrap",
];

#[derive(Debug, Clone, PartialEq)]
pub struct Contender {
    pub contender: String,
    pub label: String,
    pub what: String,
    pub version: String,
    pub samples: u64,
    pub median_us: f64,
    pub p99_us: f64,
    /// Executions per second by thread count.
    pub rates: Vec<(u64, f64)>,
    pub peak_rss_kib: u64,
    pub rss_source: String,
}

impl Contender {
    fn rate(&self, threads: u64) -> Option<f64> {
        self.rates
            .iter()
            .find(|(count, _)| *count == threads)
            .map(|(_, rate)| *rate)
    }
}

/// Median, min and max of one phase of a cold path, in ms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    /// Median (nearest rank, the lower middle of an even count), min and max.
    pub fn of(values: &[f64]) -> Option<Spread> {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        Some(Spread {
            median: *sorted.get((sorted.len().checked_sub(1)?) / 2)?,
            min: *sorted.first()?,
            max: *sorted.last()?,
        })
    }

    pub fn to_json(self) -> Value {
        serde_json::json!({"median": self.median, "min": self.min, "max": self.max})
    }

    fn from_json(value: &Value) -> Option<Spread> {
        Some(Spread {
            median: value.get("median")?.as_f64()?,
            min: value.get("min")?.as_f64()?,
            max: value.get("max")?.as_f64()?,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cold {
    pub component: String,
    pub size_bytes: u64,
    /// `upload` or `restart`.
    pub path: String,
    pub call: String,
    pub samples: u64,
    pub spawn_to_main: Option<Spread>,
    pub runtime_new: Option<Spread>,
    pub load: Spread,
    pub execute: Spread,
    /// In-process total: (Runtime::new +) load + first execution.
    pub total: Spread,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Inflight {
    pub executions: u64,
    pub allocator: String,
    pub rss_idle_kib: u64,
    pub rss_in_flight_kib: u64,
    pub peak_rss_kib: u64,
    pub all_inside_ms: f64,
    pub completed: u64,
}

/// Everything the suite measured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Results {
    pub contenders: Vec<Contender>,
    pub cold: Vec<Cold>,
    pub inflight: Vec<Inflight>,
}

fn text(value: &Value, key: &str) -> Result<String, String> {
    value
        .get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("missing string `{key}`"))
}

fn number(value: &Value, key: &str) -> Result<f64, String> {
    value
        .get(key)
        .and_then(Value::as_f64)
        .ok_or_else(|| format!("missing number `{key}`"))
}

fn count(value: &Value, key: &str) -> Result<u64, String> {
    value
        .get(key)
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("missing count `{key}`"))
}

fn spread(value: &Value, key: &str) -> Result<Spread, String> {
    value
        .get(key)
        .and_then(Spread::from_json)
        .ok_or_else(|| format!("missing spread `{key}`"))
}

fn optional_spread(value: &Value, key: &str) -> Option<Spread> {
    value.get(key).and_then(Spread::from_json)
}

impl Results {
    /// Parses the JSON lines of a run; other lines (progress, blank) are skipped.
    pub fn parse(lines: &str) -> Result<Results, String> {
        let mut results = Results::default();
        for (number_of_line, line) in lines.lines().enumerate() {
            let line = line.trim();
            if !line.starts_with('{') {
                continue;
            }
            let value: Value = serde_json::from_str(line)
                .map_err(|err| format!("line {}: not JSON: {err}", number_of_line + 1))?;
            let at = |err: String| format!("line {}: {err}", number_of_line + 1);
            match value.get("kind").and_then(Value::as_str) {
                Some("contender") => results
                    .contenders
                    .push(Self::contender(&value).map_err(at)?),
                Some("cold") => results.cold.push(Self::cold(&value).map_err(at)?),
                Some("inflight") => results.inflight.push(Self::inflight(&value).map_err(at)?),
                _ => {}
            }
        }
        results.contenders.sort_by_key(|contender| {
            ORDER
                .iter()
                .position(|name| *name == contender.contender)
                .unwrap_or(ORDER.len())
        });
        Ok(results)
    }

    fn contender(value: &Value) -> Result<Contender, String> {
        let rates = value
            .get("throughput")
            .and_then(Value::as_array)
            .ok_or("missing `throughput`")?
            .iter()
            .map(|rate| Ok((count(rate, "threads")?, number(rate, "per_second")?)))
            .collect::<Result<_, String>>()?;
        Ok(Contender {
            contender: text(value, "contender")?,
            label: text(value, "label")?,
            what: text(value, "what")?,
            version: text(value, "version")?,
            samples: count(value, "samples")?,
            median_us: number(value, "median_us")?,
            p99_us: number(value, "p99_us")?,
            rates,
            peak_rss_kib: count(value, "peak_rss_kib")?,
            rss_source: text(value, "rss_source")?,
        })
    }

    fn cold(value: &Value) -> Result<Cold, String> {
        Ok(Cold {
            component: text(value, "component")?,
            size_bytes: count(value, "size_bytes")?,
            path: text(value, "path")?,
            call: text(value, "call")?,
            samples: count(value, "samples")?,
            spawn_to_main: optional_spread(value, "spawn_to_main_ms"),
            runtime_new: optional_spread(value, "runtime_new_ms"),
            load: spread(value, "load_ms")?,
            execute: spread(value, "execute_ms")?,
            total: spread(value, "total_ms")?,
        })
    }

    fn inflight(value: &Value) -> Result<Inflight, String> {
        Ok(Inflight {
            executions: count(value, "executions")?,
            allocator: text(value, "allocator")?,
            rss_idle_kib: count(value, "rss_idle_kib")?,
            rss_in_flight_kib: count(value, "rss_in_flight_kib")?,
            peak_rss_kib: count(value, "peak_rss_kib")?,
            all_inside_ms: number(value, "all_inside_ms")?,
            completed: count(value, "completed")?,
        })
    }

    fn find(&self, name: &str) -> Option<&Contender> {
        self.contenders.iter().find(|c| c.contender == name)
    }

    /// The tables and the target checks, as printed by `run.sh`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.render_contenders(&mut out);
        self.render_cold(&mut out);
        self.render_inflight(&mut out);
        self.render_targets(&mut out);
        out
    }

    fn render_contenders(&self, out: &mut String) {
        if self.contenders.is_empty() {
            return;
        }
        let sluice = self.find("sluice");
        let _ = writeln!(
            out,
            "Per execution: the same job (small JSON in, one log line, the JSON out) in a fresh sandbox"
        );
        let _ = writeln!(
            out,
            "{:<40} {:>10} {:>10} {:>12} {:>12} {:>9} | {:>8} {:>8} {:>9} {:>9} {:>7}",
            "contender",
            "median µs",
            "p99 µs",
            "exec/s 1thr",
            "exec/s 2thr",
            "RSS MiB",
            "median",
            "p99",
            "exec/s 1",
            "exec/s 2",
            "RSS"
        );
        for contender in &self.contenders {
            let rate = |threads| {
                contender
                    .rate(threads)
                    .map_or_else(|| "-".to_string(), |rate| format!("{rate:.0}"))
            };
            let ratio = |value: Option<f64>| value.map_or_else(|| "-".to_string(), factor);
            let vs = |f: &dyn Fn(&Contender) -> Option<f64>| ratio(sluice.and_then(f));
            let _ = writeln!(
                out,
                "{:<40} {:>10.1} {:>10.1} {:>12} {:>12} {:>9.1} | {:>8} {:>8} {:>9} {:>9} {:>7}",
                contender.label,
                contender.median_us,
                contender.p99_us,
                rate(1),
                rate(2),
                contender.peak_rss_kib as f64 / 1024.0,
                vs(&|s| Some(contender.median_us / s.median_us)),
                vs(&|s| Some(contender.p99_us / s.p99_us)),
                vs(&|s| Some(s.rate(1)? / contender.rate(1)?)),
                vs(&|s| Some(s.rate(2)? / contender.rate(2)?)),
                vs(&|s| Some(contender.peak_rss_kib as f64 / s.peak_rss_kib as f64)),
            );
        }
        let _ = writeln!(
            out,
            "(right of |: ratio to Sluice, how many times Sluice is better: the contender's median, p99 and peak RSS over\n Sluice's, Sluice's executions per second over the contender's; {} timed executions each)",
            self.contenders
                .iter()
                .map(|c| c.samples.to_string())
                .collect::<Vec<_>>()
                .join("/")
        );
        let _ = writeln!(out);
        let _ = writeln!(out, "What one execution is, per contender:");
        for contender in &self.contenders {
            let _ = writeln!(
                out,
                "  {:<12} {} [{}]; RSS: {}",
                contender.contender, contender.what, contender.version, contender.rss_source
            );
        }
        let _ = writeln!(out);
    }

    fn render_cold(&self, out: &mut String) {
        if self.cold.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "Truly cold paths of Sluice (each sample a new process; ms, median [min-max])"
        );
        let _ = writeln!(
            out,
            "{:<24} {:<36} {:>4} {:>14} {:>14} {:>20} {:>20} {:>20}",
            "component",
            "path",
            "n",
            "exec->main",
            "Runtime::new",
            "load",
            "first execution",
            "total in process"
        );
        let cell = |spread: Option<Spread>| match spread {
            None => "-".to_string(),
            Some(s) => format!("{} [{}-{}]", ms(s.median), ms(s.min), ms(s.max)),
        };
        for cold in &self.cold {
            let path = match cold.path.as_str() {
                "upload" => "upload: validate + compile + 1st exec",
                "restart" => "restart: load precompiled + 1st exec",
                other => other,
            };
            let short = |spread: Option<Spread>| spread.map_or("-".to_string(), |s| ms(s.median));
            let _ = writeln!(
                out,
                "{:<24} {:<36} {:>4} {:>14} {:>14} {:>20} {:>20} {:>20}",
                format!("{} ({})", cold.component, human_size(cold.size_bytes),),
                path,
                cold.samples,
                short(cold.spawn_to_main),
                short(cold.runtime_new),
                cell(Some(cold.load)),
                cell(Some(cold.execute)),
                cell(Some(cold.total)),
            );
        }
        let calls: Vec<String> = self
            .cold
            .iter()
            .filter(|cold| cold.path == "upload")
            .map(|cold| format!("{}: {}", cold.component, cold.call))
            .collect();
        let _ = writeln!(
            out,
            "(upload: the server is up (engine built), then load(bytes) = validate + compile + write the artifact\n to the cache directory + pre-instantiate, then the first execute. restart: a new process, then\n Runtime::new (engine, pool, linker, cache directory) + load_cached(hash) (mmap the artifact +\n pre-instantiate) + the first execute; exec->main is the new process's start-up before main.\n Calls: {})",
            calls.join(", ")
        );
        let _ = writeln!(out);
    }

    fn render_inflight(&self, out: &mut String) {
        for inflight in &self.inflight {
            let delta = inflight
                .rss_in_flight_kib
                .saturating_sub(inflight.rss_idle_kib);
            let _ = writeln!(
                out,
                "Memory: {} executions in flight at once (each waiting in a state.get host call), {} allocator",
                inflight.executions, inflight.allocator
            );
            let _ = writeln!(
                out,
                "  RSS idle {:.1} MiB, in flight {:.1} MiB: +{:.1} MiB, {:.0} KiB per execution; peak {:.1} MiB; all inside after {:.0} ms; {} completed",
                inflight.rss_idle_kib as f64 / 1024.0,
                inflight.rss_in_flight_kib as f64 / 1024.0,
                delta as f64 / 1024.0,
                delta as f64 / inflight.executions.max(1) as f64,
                inflight.peak_rss_kib as f64 / 1024.0,
                inflight.all_inside_ms,
                inflight.completed,
            );
            let _ = writeln!(out);
        }
    }

    fn render_targets(&self, out: &mut String) {
        let mut lines = Vec::new();
        for (name, target) in TARGET_GUEST_MEDIAN_US {
            if let Some(guest) = self.find(name) {
                lines.push(format!(
                    "{} per execution (median): {:.0} us, p99 {:.0} us, target <= {target:.0} us: {}",
                    guest.label,
                    guest.median_us,
                    guest.p99_us,
                    verdict(guest.median_us <= *target)
                ));
            }
        }
        if let Some(sluice) = self.find("sluice") {
            if let Some(floor) = self.find("floor") {
                let ratio = sluice.median_us / floor.median_us;
                lines.push(format!(
                    "Sluice / raw wasmtime floor (medians): {ratio:.2}x, target <= {TARGET_FLOOR_RATIO}x: {}",
                    verdict(ratio <= TARGET_FLOOR_RATIO)
                ));
            }
            for (name, target) in [
                ("vm", TARGET_VM_FACTOR),
                ("isolated-vm", TARGET_ISOLATE_PROCESS_FACTOR),
                ("bwrap", TARGET_ISOLATE_PROCESS_FACTOR),
                ("extism", 0.0),
            ] {
                if let Some(other) = self.find(name) {
                    let factor = other.median_us / sluice.median_us;
                    let check = if target > 0.0 {
                        format!(", target >= {target:.0}x: {}", verdict(factor >= target))
                    } else {
                        " (no target)".to_string()
                    };
                    lines.push(format!(
                        "Sluice faster than {} (medians): {}{check}",
                        other.label,
                        factor_text(factor)
                    ));
                }
            }
        }
        for cold in self.cold.iter().filter(|cold| cold.path == "restart") {
            let with_start = cold
                .spawn_to_main
                .map(|start| {
                    format!(
                        " ({} ms with the process start-up)",
                        ms(start.median + cold.total.median)
                    )
                })
                .unwrap_or_default();
            lines.push(format!(
                "Restart to first execution, {} ({}): {} ms{with_start}, target < {TARGET_RESTART_MS} ms: {}",
                cold.component,
                human_size(cold.size_bytes),
                ms(cold.total.median),
                verdict(cold.total.median < TARGET_RESTART_MS)
            ));
        }
        if lines.is_empty() {
            return;
        }
        let _ = writeln!(out, "Targets (reported, not asserted):");
        for line in lines {
            let _ = writeln!(out, "  {line}");
        }
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

/// A ratio as the table shows it.
fn factor(value: f64) -> String {
    if !value.is_finite() {
        "-".to_string()
    } else if value >= 100.0 {
        format!("{value:.0}x")
    } else if value >= 10.0 {
        format!("{value:.1}x")
    } else {
        format!("{value:.2}x")
    }
}

/// "12.3x", or "0.80x (slower)" when below one.
fn factor_text(value: f64) -> String {
    if value < 1.0 {
        format!("{} (Sluice is slower)", factor(value))
    } else {
        factor(value)
    }
}

fn ms(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// Bytes as KiB or MiB.
pub fn human_size(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
    } else {
        format!("{} KiB", bytes.div_ceil(1024))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contender(name: &str, median: f64, rate: f64, rss: u64) -> String {
        serde_json::json!({
            "kind": "contender", "contender": name, "label": format!("{name} label"),
            "what": "job", "version": "1.0", "setup_ms": 1.0, "warmup": 1, "samples": 10,
            "median_us": median, "p90_us": median, "p99_us": median * 2.0, "mean_us": median,
            "throughput": [
                {"threads": 1, "seconds": 1.0, "executions": rate as u64, "per_second": rate},
                {"threads": 2, "seconds": 1.0, "executions": 2 * rate as u64, "per_second": 2.0 * rate},
            ],
            "peak_rss_kib": rss, "rss_source": "VmHWM",
        })
        .to_string()
    }

    fn sample_run() -> String {
        let spread = |median: f64| {
            Spread {
                median,
                min: median / 2.0,
                max: median * 2.0,
            }
            .to_json()
        };
        [
            "progress line that is not JSON".to_string(),
            contender("bwrap", 4000.0, 250.0, 8192),
            contender("sluice", 30.0, 30000.0, 40960),
            contender("floor", 28.0, 32000.0, 30720),
            contender("vm", 250.0, 4000.0, 204800),
            contender("isolated-vm", 1200.0, 800.0, 65536),
            serde_json::json!({
                "kind": "cold", "component": "github", "size_bytes": 482642, "path": "restart",
                "call": "manifest", "samples": 5, "spawn_to_main_ms": spread(1.0),
                "runtime_new_ms": spread(0.5), "load_ms": spread(0.4), "execute_ms": spread(0.3),
                "total_ms": spread(1.2),
            })
            .to_string(),
            serde_json::json!({
                "kind": "inflight", "executions": 1000, "allocator": "pooling",
                "rss_idle_kib": 40960, "rss_in_flight_kib": 81920, "peak_rss_kib": 90000,
                "all_inside_ms": 120.0, "completed": 1000,
            })
            .to_string(),
        ]
        .join("\n")
    }

    #[test]
    fn parses_every_kind_and_orders_the_contenders() {
        let results = Results::parse(&sample_run()).unwrap();
        let names: Vec<&str> = results
            .contenders
            .iter()
            .map(|c| c.contender.as_str())
            .collect();
        assert_eq!(names, ["sluice", "floor", "vm", "isolated-vm", "bwrap"]);
        assert_eq!(results.cold.len(), 1);
        assert_eq!(results.cold[0].total.median, 1.2);
        assert_eq!(results.inflight[0].rss_in_flight_kib, 81920);
        assert!(Results::parse("{\"kind\":\"contender\"}").is_err());
        assert!(Results::parse("{not json").is_err());
    }

    #[test]
    fn renders_ratios_and_targets() {
        let text = Results::parse(&sample_run()).unwrap().render();
        // vm: 250 / 30 = 8.33x slower; Sluice runs 30000/4000 = 7.5x more per second.
        let vm_row = text.lines().find(|l| l.starts_with("vm label")).unwrap();
        assert!(vm_row.contains("8.33x"), "{vm_row}");
        assert!(vm_row.contains("7.50x"), "{vm_row}");
        assert!(text.contains("Sluice / raw wasmtime floor (medians): 1.07x, target <= 1.5x: met"));
        assert!(
            text.contains("Sluice faster than vm label (medians): 8.33x, target >= 10x: NOT met")
        );
        assert!(
            text.contains("Sluice faster than bwrap label (medians): 133x, target >= 100x: met")
        );
        assert!(text.contains("Restart to first execution, github (472 KiB): 1.20 ms (2.20 ms with the process start-up), target < 5 ms: met"));
        // 40 MiB more for 1000 executions: 41 KiB each.
        assert!(text.contains("+40.0 MiB, 41 KiB per execution"), "{text}");
    }

    #[test]
    fn spreads_and_sizes() {
        let spread = Spread::of(&[3.0, 1.0, 2.0, 10.0]).unwrap();
        assert_eq!((spread.median, spread.min, spread.max), (2.0, 1.0, 10.0));
        assert_eq!(Spread::of(&[]), None);
        assert_eq!(human_size(482_642), "472 KiB");
        assert_eq!(human_size(5 << 20), "5.0 MiB");
        assert_eq!(factor(0.5), "0.50x");
        assert_eq!(factor(133.3), "133x");
    }
}

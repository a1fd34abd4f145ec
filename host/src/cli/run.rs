//! `sluice run`: loads one component, runs one call on it in a fresh sandbox within the
//! limits given on the command line, and prints the outcome, the metering and the
//! guest's logs as one JSON document. Nothing persists from one run to the next.

use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{ArgGroup, Args};
use serde::Serialize;
use sluice_runtime::{
    Call, Capabilities, CompileLimits, EgressPolicy, EgressRuleError, ExecuteError,
    ExecutionContext, Limits, LoadError, LoadOrigin, LogRecord, MemoryLogSink, Metering, Outcome,
    Runtime, RuntimeConfig, RuntimeError, StaticConfig, World,
};

use super::byte_size::ByteSize;
use super::exit::ExitStatus;

const CALL: &str = "Call (exactly one)";
const INPUT: &str = "Input";
const CAPABILITIES: &str = "Capabilities";
const LIMITS: &str = "Limits (defaults are the runtime's)";

/// Arguments of `sluice run`.
#[derive(Debug, Args)]
#[command(group(
    ArgGroup::new("call")
        .required(true)
        .args(["action", "manifest", "data_source", "payload"])
))]
pub struct RunArgs {
    /// The component to run: a .wasm file of world `component` (a connector) or
    /// `flow` (a code-native flow).
    #[arg(value_name = "COMPONENT.wasm")]
    pub component: PathBuf,

    /// Run the action NAME (`run-action`) with the JSON input.
    #[arg(long, value_name = "NAME", help_heading = CALL)]
    pub action: Option<String>,

    /// Call `manifest()` and report the manifest the component declares.
    #[arg(long, help_heading = CALL)]
    pub manifest: bool,

    /// Run the data source NAME (`run-data-source`) with the JSON input.
    #[arg(long, value_name = "NAME", help_heading = CALL)]
    pub data_source: Option<String>,

    /// Run a code-native flow (world `flow`): call `on-execution` with this JSON
    /// payload.
    #[arg(long, value_name = "JSON", help_heading = CALL)]
    pub payload: Option<String>,

    /// The JSON input of --action or --data-source [default: {}].
    #[arg(
        long,
        value_name = "JSON",
        help_heading = INPUT,
        conflicts_with_all = ["input_file", "manifest", "payload"]
    )]
    pub input: Option<String>,

    /// Read the JSON input of --action or --data-source from PATH (`-` reads stdin).
    #[arg(long, value_name = "PATH", help_heading = INPUT, conflicts_with_all = ["manifest", "payload"])]
    pub input_file: Option<PathBuf>,

    /// Set the instance config variable KEY to JSON_VALUE (repeatable; the last one
    /// for a KEY wins). A value that is not valid JSON is taken as a JSON string.
    #[arg(
        long = "config",
        value_name = "KEY=JSON_VALUE",
        help_heading = CAPABILITIES,
        value_parser = parse_config_var
    )]
    pub config: Vec<(String, serde_json::Value)>,

    /// Allow outbound HTTP to RULE (repeatable; without any, every request is
    /// refused). RULE is `scheme://host[:port]`: scheme `http`, `https` or `*`; host a
    /// name, an IP address (dotted-quad IPv4, or IPv6 in brackets), or `*.domain` for
    /// its subdomains; port a number or `*`, the scheme's default when omitted.
    #[arg(
        long = "allow-host",
        value_name = "RULE",
        help_heading = CAPABILITIES,
        value_parser = parse_allow_host
    )]
    pub allow_host: Vec<String>,

    /// Let outbound HTTP reach CIDR (e.g. `127.0.0.1/32`, or one address), a private
    /// or special-purpose range that is otherwise refused whatever --allow-host says
    /// (loopback, RFC 1918, link-local, CGNAT, ...). Repeatable.
    #[arg(
        long = "egress-allow-cidr",
        value_name = "CIDR",
        help_heading = CAPABILITIES,
        value_parser = super::serve::parse_egress_cidr
    )]
    pub egress_allow_cidr: Vec<String>,

    /// Fuel budget (about one unit per wasm instruction), for instantiation and the
    /// call.
    #[arg(
        long,
        value_name = "N",
        help_heading = LIMITS,
        value_parser = clap::value_parser!(u64).range(1..),
        default_value_t = Limits::default().fuel
    )]
    pub fuel: u64,

    /// Memory budget, summed over all linear memories: bytes, or a number with KiB,
    /// MiB or GiB.
    #[arg(long, value_name = "BYTES", help_heading = LIMITS, default_value_t = ByteSize(Limits::default().memory_bytes))]
    pub memory: ByteSize,

    /// Wall-clock deadline in milliseconds, for instantiation and the call, host calls
    /// included.
    #[arg(
        long,
        value_name = "N",
        help_heading = LIMITS,
        value_parser = clap::value_parser!(u64).range(1..),
        default_value_t = default_timeout_ms()
    )]
    pub timeout_ms: u64,

    /// Largest output (data plus headers): bytes, or a number with KiB, MiB or GiB.
    #[arg(
        long,
        value_name = "BYTES",
        help_heading = LIMITS,
        default_value_t = ByteSize(Limits::default().output_bytes as u64)
    )]
    pub output_bytes: ByteSize,

    /// Total log volume the guest may write: bytes, or a number with KiB, MiB or GiB.
    #[arg(
        long,
        value_name = "BYTES",
        help_heading = LIMITS,
        default_value_t = ByteSize(Limits::default().log_bytes as u64)
    )]
    pub log_bytes: ByteSize,

    /// CPU seconds compiling the component may take (in a separate worker process);
    /// past them the component is refused as invalid.
    #[arg(long, value_name = "SECONDS", help_heading = LIMITS, default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub compile_cpu_seconds: u64,

    /// Memory (address space) compiling the component may take: bytes, or a number
    /// with KiB, MiB or GiB; past it the component is refused as invalid.
    #[arg(long, value_name = "BYTES", help_heading = LIMITS, default_value_t = ByteSize(2 << 30))]
    pub compile_memory: ByteSize,

    /// Where compiled components are kept between runs, so a component compiles once
    /// (a JavaScript or Python runtime takes seconds) [default: $XDG_CACHE_HOME/sluice,
    /// else ~/.cache/sluice].
    #[arg(long, value_name = "DIR", env = "SLUICE_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Compile the component anew and keep nothing (wins over --cache-dir and
    /// SLUICE_CACHE_DIR).
    #[arg(long)]
    pub no_cache: bool,
}

fn default_timeout_ms() -> u64 {
    u64::try_from(Limits::default().timeout.as_millis()).unwrap_or(u64::MAX)
}

/// `KEY=JSON_VALUE`; the value falls back to a JSON string so that `--config
/// region=eu` works without shell-quoting `"eu"`.
fn parse_config_var(text: &str) -> Result<(String, serde_json::Value), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| "expected KEY=JSON_VALUE".to_string())?;
    if key.is_empty() {
        return Err("the KEY of KEY=JSON_VALUE is empty".to_string());
    }
    let value = serde_json::from_str(value)
        .unwrap_or_else(|_| serde_json::Value::String(value.to_string()));
    Ok((key.to_string(), value))
}

/// Checks one rule now, so a typo is reported as a usage error naming the option.
fn parse_allow_host(rule: &str) -> Result<String, EgressRuleError> {
    EgressPolicy::parse([rule])?;
    Ok(rule.to_string())
}

/// Why `sluice run` could not produce a report.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Usage(String),
    #[error("cannot read component {path}: {source}")]
    ReadComponent { path: PathBuf, source: io::Error },
    #[error("cannot read the input from {path}: {source}")]
    ReadInput { path: String, source: io::Error },
    #[error("{what} is not valid JSON: {source}")]
    InvalidJson {
        what: &'static str,
        source: serde_json::Error,
    },
    #[error(transparent)]
    Egress(#[from] EgressRuleError),
    #[error(transparent)]
    EgressCidr(#[from] sluice_runtime::CidrError),
    #[error("cannot start the runtime: {0}")]
    Runtime(#[from] RuntimeError),
    #[error("invalid component {path}: {source}")]
    Load { path: PathBuf, source: LoadError },
    #[error(transparent)]
    Execute(#[from] ExecuteError),
    #[error("cannot serialize the report: {0}")]
    Serialize(serde_json::Error),
    #[error("cannot write the report to stdout: {0}")]
    WriteReport(io::Error),
}

impl RunError {
    /// The exit status this error maps to: the caller's fault (64) or ours (70).
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            RunError::Usage(_)
            | RunError::ReadComponent { .. }
            | RunError::ReadInput { .. }
            | RunError::InvalidJson { .. }
            | RunError::Egress(_)
            | RunError::EgressCidr(_) => ExitStatus::Usage,
            RunError::Load { source, .. } => match source {
                LoadError::TooLarge { .. }
                | LoadError::NotWasm(_)
                | LoadError::CoreModule
                | LoadError::Malformed(_)
                | LoadError::ForbiddenImport { .. }
                | LoadError::NotSluice { .. }
                | LoadError::WorldMismatch { .. }
                | LoadError::Compile(_)
                | LoadError::CompileLimit(_) => ExitStatus::Usage,
                // A cache directory that cannot be used, or a worker that cannot
                // start, is the machine's problem, not the call's.
                LoadError::Cache(_) | LoadError::NotCached(_) | LoadError::CompileWorker(_) => {
                    ExitStatus::Internal
                }
            },
            RunError::Execute(err) => match err {
                ExecuteError::WrongWorld { .. }
                | ExecuteError::InvalidLimits(_)
                | ExecuteError::InvalidCall(_) => ExitStatus::Usage,
                // The host could not create the instance (memory, pool): not the
                // caller's fault. A single run holds the only slot, so being busy
                // would be a bug.
                ExecuteError::Instantiate(_) | ExecuteError::Busy { .. } => ExitStatus::Internal,
            },
            RunError::Runtime(_) | RunError::Serialize(_) | RunError::WriteReport(_) => {
                ExitStatus::Internal
            }
        }
    }
}

/// The JSON document `sluice run` prints.
#[derive(Debug, Serialize)]
struct Report<'a> {
    component: ComponentInfo,
    outcome: &'a Outcome,
    metering: &'a Metering,
    logs: Vec<LogRecord>,
    host: HostUsage,
}

/// What the `sluice run` process itself used, so that a test (or a person) can see
/// that a hostile guest was contained without an outside profiler.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct HostUsage {
    /// Peak resident set size of this process, in bytes (the kernel's `ru_maxrss`).
    max_rss_bytes: u64,
}

impl HostUsage {
    fn now() -> Self {
        HostUsage {
            max_rss_bytes: crate::process::max_rss_bytes(),
        }
    }
}

#[derive(Debug, Serialize)]
struct ComponentInfo {
    /// sha256 of the component's bytes, as in the registry.
    hash: String,
    world: World,
    /// Compiled now (and how long it took) or read from the artifact cache.
    load: LoadOrigin,
}

/// Runs `sluice run`, reporting a failure to start on stderr.
pub async fn run(args: RunArgs) -> ExitStatus {
    match try_run(args).await {
        Ok(status) => status,
        Err(err) => {
            eprintln!("error: {}", one_line(&err.to_string()));
            err.exit_status()
        }
    }
}

/// Everything that can be checked without compiling is checked first, so a mistyped
/// input fails in milliseconds rather than after the component is compiled.
///
/// File reads and compilation block the executor thread; a single run has nothing
/// else to schedule, so that costs nothing here.
async fn try_run(args: RunArgs) -> Result<ExitStatus, RunError> {
    let call = resolve_call(&args)?;
    let limits = Limits::default()
        .fuel(args.fuel)
        .memory_bytes(args.memory.bytes())
        .timeout(Duration::from_millis(args.timeout_ms))
        .output_bytes(args.output_bytes.as_usize())
        .log_bytes(args.log_bytes.as_usize());
    let logs = MemoryLogSink::new();
    let config = args
        .config
        .iter()
        .fold(StaticConfig::new(), |config, (key, value)| {
            config.with_json(key.clone(), value.clone())
        });
    let capabilities = Capabilities {
        log: Arc::new(logs.clone()),
        config: Arc::new(config),
        egress: Arc::new(EgressPolicy::parse(&args.allow_host)?),
        network: Arc::new(
            args.egress_allow_cidr
                .iter()
                .try_fold(sluice_runtime::NetworkPolicy::new(), |network, cidr| {
                    network.allow_cidr(cidr)
                })?,
        ),
        ..Capabilities::default()
    };

    let bytes = std::fs::read(&args.component).map_err(|source| RunError::ReadComponent {
        path: args.component.clone(),
        source,
    })?;
    // One execution needs one pool slot. The pool's per-memory cap is also checked
    // against each memory's declared minimum at compile time, so it must not shrink
    // with a small budget: a guest over its budget must end as a memory-limit outcome,
    // as on a server, not be refused as uncompilable.
    let defaults = RuntimeConfig::default();
    let ceiling = limits.memory_bytes.max(defaults.memory_ceiling());
    // Compiled in a worker process under its own limits: a component that would make
    // the compiler run for minutes or take gigabytes is refused, and this process
    // stays small whatever the component is.
    let compile_limits = CompileLimits::default()
        .cpu_time(Duration::from_secs(args.compile_cpu_seconds))
        .memory_bytes(args.compile_memory.bytes());
    let mut config = defaults
        .max_concurrency(1)
        .max_memory_bytes(ceiling)
        .compiler(super::compile_worker::worker(compile_limits));
    if let Some(dir) = cache_dir(&args) {
        config = config.cache_dir(dir);
    }
    let runtime = Runtime::new(config)?;
    let component = runtime.load(&bytes).map_err(|source| RunError::Load {
        path: args.component.clone(),
        source,
    })?;
    tracing::debug!(
        hash = %component.hash(),
        world = %component.world(),
        origin = ?component.origin(),
        "component loaded"
    );

    let report = runtime
        .execute(&component, call, local_context(), &capabilities, &limits)
        .await?;
    let status = if report.outcome.is_success() {
        ExitStatus::Success
    } else if report.outcome.is_limit() {
        ExitStatus::LimitHit
    } else {
        ExitStatus::GuestFailure
    };
    let document = Report {
        component: ComponentInfo {
            hash: component.hash().to_hex(),
            world: component.world(),
            load: component.origin(),
        },
        outcome: &report.outcome,
        metering: &report.metering,
        logs: logs.take(),
        host: HostUsage::now(),
    };
    let text = serde_json::to_string_pretty(&document).map_err(RunError::Serialize)?;
    let mut stdout = io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.write_all(b"\n"))
        .and_then(|()| stdout.flush())
        .map_err(RunError::WriteReport)?;
    Ok(status)
}

/// Turns the call options into a [`Call`], reading and checking its JSON.
fn resolve_call(args: &RunArgs) -> Result<Call, RunError> {
    if args.manifest {
        return Ok(Call::Manifest);
    }
    if let Some(payload) = &args.payload {
        check_json("--payload", payload)?;
        return Ok(Call::FlowExecution {
            payload: payload.clone(),
        });
    }
    let input = read_input(args)?;
    match (&args.action, &args.data_source) {
        (Some(action), _) => Ok(Call::Action {
            action: action.clone(),
            input,
        }),
        (None, Some(name)) => Ok(Call::DataSource {
            name: name.clone(),
            input,
        }),
        // clap's required group makes this unreachable; stay graceful regardless.
        (None, None) => Err(RunError::Usage(
            "one of --action, --manifest, --data-source or --payload is required".to_string(),
        )),
    }
}

/// The input text as given, not re-serialized, so the guest sees exactly the bytes
/// the user wrote (key order, number formatting).
fn read_input(args: &RunArgs) -> Result<String, RunError> {
    match (&args.input, &args.input_file) {
        (Some(text), _) => {
            check_json("--input", text)?;
            Ok(text.clone())
        }
        (None, Some(path)) => {
            let text = read_text(path)?;
            check_json("--input-file", &text)?;
            Ok(text)
        }
        (None, None) => Ok("{}".to_string()),
    }
}

fn read_text(path: &Path) -> Result<String, RunError> {
    let result = if path == Path::new("-") {
        let mut text = String::new();
        io::stdin().read_to_string(&mut text).map(|_| text)
    } else {
        std::fs::read_to_string(path)
    };
    result.map_err(|source| RunError::ReadInput {
        path: if path == Path::new("-") {
            "stdin".to_string()
        } else {
            path.display().to_string()
        },
        source,
    })
}

fn check_json(what: &'static str, text: &str) -> Result<(), RunError> {
    serde_json::from_str::<serde::de::IgnoredAny>(text)
        .map(|_| ())
        .map_err(|source| RunError::InvalidJson { what, source })
}

/// A local run belongs to no tenant or instance; fixed placeholder ids keep guests
/// that read their context (e.g. for state keys) deterministic across runs.
fn local_context() -> ExecutionContext {
    let started_at_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        });
    ExecutionContext {
        execution_id: "local-run".to_string(),
        tenant_id: "local".to_string(),
        integration_id: "local".to_string(),
        instance_id: "local".to_string(),
        flow_name: "sluice run".to_string(),
        attempt: 1,
        started_at_ms,
        ..ExecutionContext::default()
    }
}

/// Error messages from wasmtime can span lines; scripts reading stderr expect one line
/// per error.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The artifact cache of `sluice run`: `--cache-dir`, else the user's cache directory;
/// none with `--no-cache` or when no home is known.
fn cache_dir(args: &RunArgs) -> Option<PathBuf> {
    if args.no_cache {
        return None;
    }
    if let Some(dir) = &args.cache_dir {
        return Some(dir.clone());
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|dir| !dir.is_empty())
                .map(|home| PathBuf::from(home).join(".cache"))
        })?;
    Some(base.join("sluice"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_values_fall_back_to_strings() {
        assert_eq!(
            parse_config_var("retries=3"),
            Ok(("retries".to_string(), serde_json::json!(3)))
        );
        assert_eq!(
            parse_config_var("region=eu"),
            Ok(("region".to_string(), serde_json::json!("eu")))
        );
        assert_eq!(
            parse_config_var("url=https://x.example/?a=b"),
            Ok((
                "url".to_string(),
                serde_json::json!("https://x.example/?a=b")
            ))
        );
        assert_eq!(
            parse_config_var("empty="),
            Ok(("empty".to_string(), serde_json::json!("")))
        );
        assert!(parse_config_var("novalue").is_err());
        assert!(parse_config_var("=1").is_err());
    }

    #[test]
    fn multi_line_messages_become_one_line() {
        assert_eq!(one_line("a\n  b\n\nc\n"), "a b c");
    }
}

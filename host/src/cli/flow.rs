//! `sluice flow`: `validate` checks a flow definition (YAML or JSON) and reports every
//! problem with its path in the file; `run` runs one flow of it locally, on components
//! loaded from a directory, and prints the execution record (a human summary, or the
//! full record as JSON with `--json`).

use std::fmt::Write as _;
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, Subcommand};
use serde_json::{Value, json};
use sluice_runtime::flow::{
    ComponentCatalog, DEFAULT_MAX_STEP_RUNS, Definition, EngineOptions, ExecutionRecord,
    FlowEngine, Format, InvalidDefinition, MemoryCatalog, RecordedValue, RunEnv, StepKind,
    StepRecord, StepStatus, compile_with, validate_with,
};
use sluice_runtime::{
    Capabilities, EgressPolicy, EgressRuleError, ExecutionContext, HttpRequest, Limits,
    MemoryStateStore, Runtime, RuntimeConfig, RuntimeError, StaticConfig,
};

use super::exit::ExitStatus;

/// Arguments of `sluice flow`.
#[derive(Debug, Args)]
pub struct FlowArgs {
    #[command(subcommand)]
    pub command: FlowCommand,
}

/// The subcommands of `sluice flow`.
#[derive(Debug, Subcommand)]
pub enum FlowCommand {
    /// Check a flow definition and report every problem with its path in the file.
    /// Without --components, what depends on the components (their actions and input
    /// schemas) is not checked.
    #[command(after_help = EXIT_CODES_HELP)]
    Validate(ValidateArgs),
    /// Run one flow of a definition locally and print its execution record.
    #[command(after_help = EXIT_CODES_HELP)]
    Run(RunFlowArgs),
}

/// Arguments of `sluice flow validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The definition: YAML, or JSON for a `.json` file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// A directory of component .wasm files to check the definition against.
    #[arg(long, value_name = "DIR")]
    pub components: Option<PathBuf>,

    /// Step runs one execution may make (every step of every iteration counts): a
    /// loop that would run more is reported. Use the cap of the engine that will run
    /// the flow (`sluice serve --max-step-runs`).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_STEP_RUNS, value_parser = parse_step_runs)]
    pub max_step_runs: usize,

    /// Print the result as JSON on stdout, whatever goes wrong.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `sluice flow run`.
#[derive(Debug, Args)]
pub struct RunFlowArgs {
    /// The definition: YAML, or JSON for a `.json` file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// The trigger payload: a JSON file sent as the request body (`-` reads stdin)
    /// [default: {}].
    #[arg(long, value_name = "JSON_FILE")]
    pub payload: Option<PathBuf>,

    /// The directory of component .wasm files the definition pins.
    #[arg(long, value_name = "DIR")]
    pub components: PathBuf,

    /// The flow to run, by key; required when the definition has several.
    #[arg(long, value_name = "KEY")]
    pub flow: Option<String>,

    /// Set the config variable KEY to VALUE (repeatable). A VALUE that is not JSON is
    /// taken as a string.
    #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_config_var)]
    pub config: Vec<(String, Value)>,

    /// Add a request header NAME: VALUE (repeatable).
    #[arg(long = "header", value_name = "NAME:VALUE", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,

    /// Allow outbound HTTP to RULE (repeatable), as for `sluice run`.
    #[arg(long = "allow-host", value_name = "RULE", value_parser = parse_allow_host)]
    pub allow_host: Vec<String>,

    /// Let outbound HTTP reach a private or special-purpose range (repeatable), as
    /// for `sluice run`.
    #[arg(long = "egress-allow-cidr", value_name = "CIDR", value_parser = super::serve::parse_egress_cidr)]
    pub egress_allow_cidr: Vec<String>,

    /// Wall-clock deadline of each step's sandbox, in milliseconds.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout_ms: Option<u64>,

    /// Step runs the execution may make (every step of every iteration counts); the
    /// definition is validated against the same cap.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_STEP_RUNS, value_parser = parse_step_runs)]
    pub max_step_runs: usize,

    /// Print the full execution record as JSON instead of a summary (on an error
    /// before the run, a JSON report of it).
    #[arg(long)]
    pub json: bool,
}

/// A cap on step runs: 1 or more.
pub(crate) fn parse_step_runs(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("the cap must be at least 1".to_string()),
        Ok(n) => Ok(n),
        Err(err) => Err(format!("not a whole number: {err}")),
    }
}

const EXIT_CODES_HELP: &str = "\
Exit codes:
  0   the definition is valid / the flow succeeded
  1   the flow failed (the record names the failing step)
  64  invalid definition, or bad usage
  70  internal error";

fn parse_config_var(text: &str) -> Result<(String, Value), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| "expected KEY=VALUE".to_string())?;
    if key.is_empty() {
        return Err("the KEY of KEY=VALUE is empty".to_string());
    }
    let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_string()));
    Ok((key.to_string(), value))
}

fn parse_header(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| "expected NAME:VALUE".to_string())?;
    let name = name.trim();
    if name.is_empty() {
        return Err("the NAME of NAME:VALUE is empty".to_string());
    }
    Ok((name.to_ascii_lowercase(), value.trim().to_string()))
}

fn parse_allow_host(rule: &str) -> Result<String, EgressRuleError> {
    EgressPolicy::parse([rule])?;
    Ok(rule.to_string())
}

/// Why `sluice flow` could not finish.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("{0}")]
    Usage(String),
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: io::Error },
    #[error("{0}")]
    NotUtf8(String),
    #[error("{path}: {source}")]
    Invalid {
        path: String,
        source: InvalidDefinition,
    },
    #[error("the payload is not valid JSON: {0}")]
    Payload(serde_json::Error),
    #[error(transparent)]
    Egress(#[from] EgressRuleError),
    #[error(transparent)]
    EgressCidr(#[from] sluice_runtime::CidrError),
    #[error("cannot load components: {0}")]
    Catalog(String),
    #[error("cannot start the runtime: {0}")]
    Runtime(#[from] RuntimeError),
    #[error("cannot start the flow: {0}")]
    Run(String),
    #[error("cannot write to stdout: {0}")]
    Write(io::Error),
}

impl FlowError {
    fn exit_status(&self) -> ExitStatus {
        match self {
            FlowError::Usage(_)
            | FlowError::Read { .. }
            | FlowError::NotUtf8(_)
            | FlowError::Invalid { .. }
            | FlowError::Payload(_)
            | FlowError::Egress(_)
            | FlowError::EgressCidr(_)
            | FlowError::Catalog(_)
            | FlowError::Run(_) => ExitStatus::Usage,
            FlowError::Runtime(_) | FlowError::Write(_) => ExitStatus::Internal,
        }
    }
}

/// Runs `sluice flow ...`, reporting failures on stderr, or with `--json` as a JSON
/// report on stdout (the output of `--json` is JSON whatever goes wrong).
pub async fn run(args: FlowArgs) -> ExitStatus {
    let (result, json_report) = match args.command {
        FlowCommand::Validate(args) => {
            let report = args.json.then(|| ("valid", false, file_name(&args.file)));
            (validate_command(args).await, report)
        }
        FlowCommand::Run(args) => {
            let report = args.json.then(|| ("status", true, file_name(&args.file)));
            (run_command(args).await, report)
        }
    };
    match result {
        Ok(status) => status,
        Err(err) => {
            if let Some((field, run, file)) = json_report {
                let errors = match &err {
                    FlowError::Invalid { source, .. } => error_list(source),
                    other => vec![json!({
                        "path": "", "message": other.to_string(), "line": null, "column": null,
                    })],
                };
                let value = if run { json!("error") } else { json!(false) };
                let document = json!({field: value, "file": file, "errors": errors});
                // Nothing else can report a failed write: stdout is where the report goes.
                let _ = write_stdout(&format!("{document:#}\n"));
                return err.exit_status();
            }
            match &err {
                FlowError::Invalid { path, source } => {
                    for error in &source.errors {
                        eprintln!("error: {path}: {error}");
                    }
                }
                other => eprintln!("error: {other}"),
            }
            err.exit_status()
        }
    }
}

fn file_name(path: &Path) -> String {
    if path == Path::new("-") {
        "stdin".into()
    } else {
        path.display().to_string()
    }
}

fn read_text(path: &Path) -> Result<String, FlowError> {
    let result = if path == Path::new("-") {
        let mut bytes = Vec::new();
        io::stdin().read_to_end(&mut bytes).map(|_| bytes)
    } else {
        std::fs::read(path)
    };
    let bytes = result.map_err(|source| FlowError::Read {
        path: file_name(path),
        source,
    })?;
    String::from_utf8(bytes).map_err(|err| {
        FlowError::NotUtf8(sluice_runtime::flow::definition::not_utf8(
            &file_name(path),
            &err,
        ))
    })
}

fn parse_definition(path: &Path) -> Result<Definition, FlowError> {
    let text = read_text(path)?;
    Definition::parse(&text, Format::of_path(path)).map_err(|source| FlowError::Invalid {
        path: path.display().to_string(),
        source,
    })
}

/// One runtime for the command. Code-native flows hold a slot while their `invoke`
/// calls take another, so a few slots are needed.
fn runtime() -> Result<Runtime, FlowError> {
    Ok(Runtime::new(
        RuntimeConfig::default()
            .max_concurrency(4)
            .busy_wait(Duration::from_secs(30)),
    )?)
}

async fn load_catalog(runtime: &Runtime, dir: &Path) -> Result<MemoryCatalog, FlowError> {
    if !dir.is_dir() {
        return Err(FlowError::Usage(format!(
            "--components {}: not a directory",
            dir.display()
        )));
    }
    let catalog = MemoryCatalog::load_dir(runtime, dir)
        .await
        .map_err(|err| FlowError::Catalog(err.to_string()))?;
    for skipped in catalog.skipped() {
        tracing::info!(file = %skipped.path.display(), reason = %skipped.reason, "skipped");
    }
    Ok(catalog)
}

/// Adds the files the catalog skipped to the errors about unknown components, where
/// they explain why a component is missing.
fn with_skipped(mut invalid: InvalidDefinition, catalog: &MemoryCatalog) -> InvalidDefinition {
    let unknown = invalid
        .errors
        .iter()
        .any(|error| error.message.contains("unknown component"));
    if unknown {
        for skipped in catalog.skipped() {
            invalid
                .errors
                .push(sluice_runtime::flow::ValidationError::at(
                    "",
                    format!(
                        "note: {} was skipped: {}",
                        skipped.path.display(),
                        skipped.reason
                    ),
                ));
        }
    }
    invalid
}

fn write_stdout(text: &str) -> Result<(), FlowError> {
    let mut stdout = io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(FlowError::Write)
}

async fn validate_command(args: ValidateArgs) -> Result<ExitStatus, FlowError> {
    let file = args.file.display().to_string();
    let definition = match parse_definition(&args.file) {
        Ok(definition) => definition,
        Err(FlowError::Invalid { path, source }) if args.json => {
            return report_invalid(&path, &source);
        }
        Err(err) => return Err(err),
    };
    let (result, pins) = match &args.components {
        None => (validate_with(&definition, None, args.max_step_runs), None),
        Some(dir) => {
            let runtime = runtime()?;
            let catalog = load_catalog(&runtime, dir).await?;
            match compile_with(
                &definition,
                &catalog as &dyn ComponentCatalog,
                args.max_step_runs,
            ) {
                Ok(plan) => (Ok(()), Some(plan.pins())),
                Err(invalid) => (Err(with_skipped(invalid, &catalog)), None),
            }
        }
    };
    if let Err(invalid) = result {
        if args.json {
            return report_invalid(&file, &invalid);
        }
        return Err(FlowError::Invalid {
            path: file,
            source: invalid,
        });
    }
    let flows: Vec<String> = definition
        .flows
        .iter()
        .map(|flow| {
            flow.key
                .clone()
                .or_else(|| {
                    flow.name
                        .as_deref()
                        .map(sluice_runtime::flow::camel_case_key)
                })
                .unwrap_or_default()
        })
        .collect();
    if args.json {
        let pins = pins.as_ref().map(|pins| {
            pins.iter()
                .map(|(key, (version, hash))| {
                    (
                        key.clone(),
                        json!({"version": version, "hash": hash.to_hex()}),
                    )
                })
                .collect::<serde_json::Map<_, _>>()
        });
        let document = json!({
            "valid": true,
            "integration": definition.name,
            "flows": flows,
            "componentsChecked": pins.is_some(),
            "pins": pins,
        });
        write_stdout(&format!("{document:#}\n"))?;
    } else {
        let mut text = format!(
            "{file}: valid: integration `{}` with {} flow{} ({})\n",
            definition.name,
            flows.len(),
            if flows.len() == 1 { "" } else { "s" },
            flows.join(", ")
        );
        match &pins {
            Some(pins) => {
                for (key, (version, hash)) in pins {
                    let _ = writeln!(text, "  {key} {version} sha256:{}", hash.to_hex());
                }
            }
            None => text.push_str(
                "  components not checked: pass --components DIR to check actions and inputs\n",
            ),
        }
        write_stdout(&text)?;
    }
    Ok(ExitStatus::Success)
}

fn error_list(invalid: &InvalidDefinition) -> Vec<Value> {
    invalid
        .errors
        .iter()
        .map(|error| {
            json!({
                "path": error.path,
                "message": error.message,
                "line": error.line,
                "column": error.column,
            })
        })
        .collect()
}

fn report_invalid(file: &str, invalid: &InvalidDefinition) -> Result<ExitStatus, FlowError> {
    let document = json!({"valid": false, "file": file, "errors": error_list(invalid)});
    write_stdout(&format!("{document:#}\n"))?;
    Ok(ExitStatus::Usage)
}

async fn run_command(args: RunFlowArgs) -> Result<ExitStatus, FlowError> {
    let definition = parse_definition(&args.file)?;
    let payload = match &args.payload {
        Some(path) => read_text(path)?,
        None => "{}".to_string(),
    };
    serde_json::from_str::<serde::de::IgnoredAny>(&payload).map_err(FlowError::Payload)?;
    let egress = EgressPolicy::parse(&args.allow_host)?;
    let network = args
        .egress_allow_cidr
        .iter()
        .try_fold(sluice_runtime::NetworkPolicy::new(), |network, cidr| {
            network.allow_cidr(cidr)
        })?;

    let runtime = runtime()?;
    let catalog = load_catalog(&runtime, &args.components).await?;
    let plan = compile_with(&definition, &catalog, args.max_step_runs).map_err(|invalid| {
        FlowError::Invalid {
            path: args.file.display().to_string(),
            source: with_skipped(invalid, &catalog),
        }
    })?;
    let flow = match (&args.flow, plan.flow_keys().as_slice()) {
        (Some(flow), _) => flow.clone(),
        (None, [only]) => (*only).to_string(),
        (None, keys) => {
            return Err(FlowError::Usage(format!(
                "the definition has {} flows ({}): choose one with --flow KEY",
                keys.len(),
                keys.join(", ")
            )));
        }
    };

    let config = args
        .config
        .iter()
        .fold(StaticConfig::new(), |config, (key, value)| {
            config.with_json(key.clone(), value.clone())
        });
    let mut limits = Limits::default();
    if let Some(timeout) = args.timeout_ms {
        limits = limits.timeout(Duration::from_millis(timeout));
    }
    let env = RunEnv {
        context: local_context(plan.name()),
        capabilities: Capabilities {
            state: Arc::new(MemoryStateStore::new()),
            config: Arc::new(config),
            egress: Arc::new(egress),
            network: Arc::new(network),
            ..Capabilities::default()
        },
        limits,
        deadline: None,
    };
    let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
    for (name, value) in &args.headers {
        headers.retain(|(existing, _)| existing != name || name != "content-type");
        headers.push((name.clone(), value.clone()));
    }
    let request = HttpRequest {
        method: "POST".into(),
        path: String::new(),
        query: Vec::new(),
        headers,
        body: payload.into_bytes(),
    };
    let engine = FlowEngine::with_options(
        runtime,
        EngineOptions {
            max_step_runs: args.max_step_runs,
            ..EngineOptions::default()
        },
    );
    let record = engine
        .run(&plan, &flow, request, &env)
        .await
        .map_err(|err| FlowError::Run(err.to_string()))?;
    let text = if args.json {
        match serde_json::to_string_pretty(&record) {
            Ok(text) => text + "\n",
            Err(err) => {
                return Err(FlowError::Run(format!(
                    "cannot serialize the record: {err}"
                )));
            }
        }
    } else {
        summary(&record)
    };
    write_stdout(&text)?;
    Ok(if record.succeeded() {
        ExitStatus::Success
    } else {
        ExitStatus::GuestFailure
    })
}

/// A local run belongs to no tenant or instance; fixed ids keep guests that read their
/// context deterministic.
fn local_context(integration: &str) -> ExecutionContext {
    let started_at_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        });
    ExecutionContext {
        execution_id: "local-flow-run".into(),
        tenant_id: "local".into(),
        integration_id: integration.to_string(),
        instance_id: "local".into(),
        started_at_ms,
        ..ExecutionContext::default()
    }
}

fn millis(micros: u64) -> String {
    format!("{:.1} ms", micros as f64 / 1000.0)
}

fn bytes(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{:.1} MiB", n as f64 / f64::from(1 << 20))
    } else {
        format!("{:.0} KiB", n as f64 / 1024.0)
    }
}

/// Cuts `text` to one line of at most `max` characters.
fn short(text: &str, max: usize) -> String {
    let line: String = text.lines().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= max {
        line
    } else {
        line.chars().take(max).collect::<String>() + "…"
    }
}

fn recorded(value: &RecordedValue) -> String {
    match value {
        RecordedValue::Inline(value) => short(&value.to_string(), 100),
        RecordedValue::Stored {
            reference, bytes, ..
        } => format!("<{bytes} bytes stored at {reference}>"),
    }
}

fn step_line(step: &StepRecord) -> String {
    let mut key = step.key.clone();
    if !step.iteration.is_empty() {
        let indices: Vec<String> = step.iteration.iter().map(u32::to_string).collect();
        let _ = write!(key, "[{}]", indices.join("]["));
    }
    let what = match (step.kind, &step.component, &step.action) {
        (StepKind::Action | StepKind::Invoke | StepKind::Trigger, Some(c), Some(a)) => {
            format!("{c}.{a}")
        }
        (StepKind::Code, Some(c), _) => format!("{c} (code)"),
        (StepKind::Trigger, _, _) => "webhook".into(),
        (StepKind::InvokeFlow, _, _) => match &step.child_execution_id {
            Some(child) => format!("flow {} → {child}", step.flow.as_deref().unwrap_or("?")),
            None => format!("flow {}", step.flow.as_deref().unwrap_or("?")),
        },
        (kind, _, _) => {
            let name = serde_json::to_value(kind)
                .ok()
                .and_then(|value| value.as_str().map(str::to_string))
                .unwrap_or_default();
            match &step.branch {
                Some(branch) => format!("{name} → {branch}"),
                None => name,
            }
        }
    };
    let status = match step.status {
        StepStatus::Succeeded => "succeeded",
        StepStatus::Failed => "failed",
        StepStatus::Ignored => "ignored",
    };
    let mut line = format!(
        "  {key:<22} {what:<28} {status:<9} {:>9}",
        millis(step.duration_us)
    );
    if !step.attempts.is_empty() {
        let _ = write!(
            line,
            "  fuel {}  mem {}",
            step.fuel_used,
            bytes(step.peak_memory_bytes)
        );
        if step.attempts.len() > 1 {
            let _ = write!(line, "  attempts {}", step.attempts.len());
        }
    }
    if let Some(error) = &step.error {
        let _ = write!(line, "  {}", short(&error.to_string(), 120));
    }
    line
}

/// The human summary of a record.
fn summary(record: &ExecutionRecord) -> String {
    let mut text = String::new();
    let verdict = if record.succeeded() {
        "succeeded".to_string()
    } else {
        format!(
            "failed at step `{}`",
            record.failed_step.as_deref().unwrap_or("?")
        )
    };
    let _ = writeln!(
        text,
        "flow `{}` of `{}` {verdict} in {} ({} steps, fuel {}, execution {})",
        record.flow,
        record.integration,
        millis(record.duration_us),
        record.steps.len(),
        record.fuel_used,
        record.execution_id,
    );
    for step in &record.steps {
        let _ = writeln!(text, "{}", step_line(step));
        for log in &step.logs {
            let _ = writeln!(text, "      [{}] {}", log.level, short(&log.message, 120));
        }
    }
    if let Some(error) = &record.error {
        let _ = writeln!(text, "error: {error}");
    }
    if let Some(response) = &record.response {
        let _ = write!(text, "response: {}", response.status);
        if let Some(content_type) = &response.content_type {
            let _ = write!(text, " {content_type}");
        }
        if let Some(body) = &response.body {
            let _ = write!(text, " {}", recorded(body));
        }
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_and_config_parse() {
        assert_eq!(
            parse_header("X-Hub-Signature: sha256=ab"),
            Ok(("x-hub-signature".into(), "sha256=ab".into()))
        );
        assert!(parse_header("nocolon").is_err());
        assert_eq!(parse_config_var("n=3"), Ok(("n".into(), json!(3))));
        assert_eq!(parse_config_var("r=eu"), Ok(("r".into(), json!("eu"))));
        assert!(parse_config_var("=1").is_err());
    }

    #[test]
    fn long_text_is_cut() {
        assert_eq!(short("a\nb", 10), "a b");
        assert_eq!(short("abcdef", 3), "abc…");
    }
}

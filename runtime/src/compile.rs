//! Contained compilation: where untrusted component bytes become native code.
//!
//! Owns the [`Compiler`] choice of a runtime (in this process, or in a worker process
//! under a CPU-time limit, an address-space limit and a wall-clock kill), the
//! host-wide cap on compiles running at once, the worker's protocol and the worker's
//! own side ([`worker_main`], which an embedder's binary calls from a hidden
//! subcommand: the runtime cannot name the embedder's binary itself).
//!
//! Cranelift's time and memory are not bounded by anything in the wasm: one function
//! with thousands of locals and tens of thousands of branches makes it ask for tens of
//! gigabytes after minutes. Only a separate process can be stopped safely in the
//! middle of that, and only the kernel's limits stop it before it takes the host down.
//!
//! The protocol: the parent starts the worker command with the request (engine
//! settings and the output path) as JSON in [`WORKER_REQUEST_ENV`], writes the
//! component's bytes to its stdin, and reads one line starting with
//! `sluice-compile-report: ` from its stdout (other output is ignored, so a test
//! binary can act as the worker). The worker writes the artifact to the output path,
//! a private temporary file the parent created, and the parent loads it only when the
//! worker exited 0 and reported the artifact's length.

use std::ffi::OsString;
use std::fmt;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::LoadError;

/// The environment variable carrying a worker's request (JSON).
pub const WORKER_REQUEST_ENV: &str = "SLUICE_COMPILE_WORKER_REQUEST";

/// Marks the worker's report line on stdout.
const REPORT_PREFIX: &str = "sluice-compile-report: ";

/// Most of the worker's stderr kept for the diagnosis of a crash.
const STDERR_KEEP: usize = 16 << 10;

/// Most of the worker's stdout read: the report is one short line.
const STDOUT_KEEP: usize = 64 << 10;

/// Budgets of one compilation in a worker process.
///
/// ```
/// use std::time::Duration;
/// use sluice_runtime::compile::CompileLimits;
///
/// let limits = CompileLimits::default()
///     .cpu_time(Duration::from_secs(2))
///     .memory_bytes(1 << 30);
/// assert_eq!(limits.wall_time(), Duration::from_secs(16));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompileLimits {
    cpu_time: Duration,
    memory_bytes: u64,
    wall_time: Option<Duration>,
}

impl Default for CompileLimits {
    /// 60 CPU-seconds and 2 GiB of address space: an 11 MiB component compiles in
    /// a few seconds and a few hundred MiB, so these only stop pathological input.
    fn default() -> Self {
        CompileLimits {
            cpu_time: Duration::from_secs(60),
            memory_bytes: 2 << 30,
            wall_time: None,
        }
    }
}

impl CompileLimits {
    /// CPU time (user plus system) the worker may use; the kernel stops it past that
    /// (`RLIMIT_CPU`). Whole seconds, at least one.
    pub fn cpu_time(mut self, limit: Duration) -> Self {
        self.cpu_time = Duration::from_secs(limit.as_secs().max(1));
        self
    }

    /// Address space the worker may map (`RLIMIT_AS`), its program included; also the
    /// largest artifact it may write (`RLIMIT_FSIZE`). At least 64 MiB.
    pub fn memory_bytes(mut self, bytes: u64) -> Self {
        self.memory_bytes = bytes.max(64 << 20);
        self
    }

    /// The wall-clock backstop: the worker is killed past it even when it uses no CPU
    /// (blocked, or starved by a busy host). Default: 4 times the CPU time plus 8 s.
    pub fn wall_time_limit(mut self, limit: Duration) -> Self {
        self.wall_time = Some(limit.max(Duration::from_secs(1)));
        self
    }

    /// The CPU-time limit.
    pub fn cpu_time_limit(&self) -> Duration {
        self.cpu_time
    }

    /// The memory (address-space) limit, in bytes.
    pub fn memory_limit(&self) -> u64 {
        self.memory_bytes
    }

    /// The wall-clock limit in effect.
    pub fn wall_time(&self) -> Duration {
        self.wall_time
            .unwrap_or(self.cpu_time * 4 + Duration::from_secs(8))
    }
}

/// How a worker is started: a program and its arguments (for the `sluice` binary,
/// itself with its hidden `compile-worker` subcommand), and the limits it runs under.
#[derive(Debug, Clone)]
pub struct WorkerCommand {
    /// The program to run (the `sluice` binary for `sluice compile-worker`).
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// The limits the worker runs under.
    pub limits: CompileLimits,
}

impl WorkerCommand {
    /// Runs `program` under `limits`, with no arguments yet.
    pub fn new(program: impl Into<PathBuf>, limits: CompileLimits) -> Self {
        WorkerCommand {
            program: program.into(),
            args: Vec::new(),
            limits,
        }
    }

    /// Adds an argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }
}

/// Where a runtime compiles components.
#[derive(Debug, Clone, Default)]
pub enum Compiler {
    /// In the calling process, unbounded: for trusted components (tests, benchmarks,
    /// a library user's own guests).
    #[default]
    InProcess,
    /// In a worker process under [`CompileLimits`]: for untrusted components.
    Worker(WorkerCommand),
}

/// Which compile budget a component exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompileLimitKind {
    /// The CPU-time limit.
    CpuTime(Duration),
    /// The memory (address space) limit, in bytes.
    Memory(u64),
    /// The wall-clock limit.
    WallTime(Duration),
}

impl fmt::Display for CompileLimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompileLimitKind::CpuTime(limit) => {
                write!(f, "CPU-time limit of {} s", limit.as_secs())
            }
            CompileLimitKind::Memory(bytes) => {
                write!(f, "memory limit of {} MiB", bytes >> 20)
            }
            CompileLimitKind::WallTime(limit) => {
                write!(f, "wall-clock limit of {} s", limit.as_secs())
            }
        }
    }
}

/// What a compilation cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CompileStats {
    /// Wall time of the compilation (in a worker: from its start to its report).
    #[serde(rename = "compileTimeUs", serialize_with = "serialize_us")]
    pub compile_time: Duration,
    /// The worker's peak resident memory (its `ru_maxrss`); unknown in process.
    pub peak_memory_bytes: Option<u64>,
}

fn serialize_us<S: serde::Serializer>(
    duration: &Duration,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(u64::try_from(duration.as_micros()).unwrap_or(u64::MAX))
}

/// A counting gate on compiles running at once in this process's runtime. Waiting
/// blocks the thread: `Runtime::load` is synchronous and documented as blocking.
pub(crate) struct CompileSlots {
    free: Mutex<usize>,
    freed: Condvar,
}

pub(crate) struct CompileSlot<'a>(&'a CompileSlots);

impl CompileSlots {
    pub(crate) fn new(slots: usize) -> Self {
        CompileSlots {
            free: Mutex::new(slots.max(1)),
            freed: Condvar::new(),
        }
    }

    pub(crate) fn acquire(&self) -> CompileSlot<'_> {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        while *free == 0 {
            free = self
                .freed
                .wait(free)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *free -= 1;
        CompileSlot(self)
    }
}

impl Drop for CompileSlot<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        self.0.freed.notify_one();
    }
}

/// What the worker needs to build an engine whose artifacts the parent can load.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EngineSettings {
    pub(crate) max_wasm_stack: usize,
    pub(crate) opt_level: crate::engine::OptLevel,
    /// The parent's artifact directory name (its engine's compatibility hash): the
    /// worker refuses to compile when its own engine differs, rather than produce an
    /// artifact the parent would reject.
    pub(crate) compatibility: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WorkerRequest {
    engine: EngineSettings,
    output: PathBuf,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WorkerReport {
    #[serde(default)]
    error: Option<String>,
    /// The error is the wasm's (invalid code), not the worker's.
    #[serde(default)]
    invalid: bool,
    #[serde(default)]
    artifact_bytes: u64,
    #[serde(default)]
    compile_time_us: u64,
    #[serde(default)]
    peak_memory_bytes: u64,
}

/// Compiles `bytes` in a worker started by `command`, which writes the artifact to
/// `output`. Returns the compilation's cost; the artifact is then in `output`.
pub(crate) fn compile_in_worker(
    command: &WorkerCommand,
    engine: &EngineSettings,
    bytes: &[u8],
    output: &Path,
) -> Result<CompileStats, LoadError> {
    let limits = command.limits;
    let request = serde_json::to_string(&WorkerRequest {
        engine: engine.clone(),
        output: output.to_path_buf(),
    })
    .map_err(|err| LoadError::CompileWorker(format!("cannot encode the request: {err}")))?;
    let mut process = Command::new(&command.program);
    process
        .args(&command.args)
        .env(WORKER_REQUEST_ENV, request)
        // Each malloc arena reserves 64 MiB of address space; a worker needs few, and
        // the address-space limit should measure what the compiler uses.
        .env("MALLOC_ARENA_MAX", "2")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let cpu_seconds = limits.cpu_time.as_secs();
    let memory = limits.memory_bytes;
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe functions may be called: it calls only `getrlimit`,
    // `setrlimit` and `setpriority` (system calls), allocates nothing and takes no
    // lock; it captures two integers by value.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut process, move || {
            apply_child_limits(cpu_seconds, memory)
        });
    }
    let started = Instant::now();
    let mut child = process.spawn().map_err(|err| {
        LoadError::CompileWorker(format!(
            "cannot start the compile worker {}: {err}",
            command.program.display()
        ))
    })?;
    let (status, stdout, stderr, killed) = supervise(&mut child, bytes, limits.wall_time());
    let elapsed = started.elapsed();
    let report = String::from_utf8_lossy(&stdout)
        .lines()
        // Found anywhere in a line: a worker embedded in another program (a test
        // harness) may have written a partial line first.
        .find_map(|line| {
            line.find(REPORT_PREFIX)
                .map(|at| &line[at + REPORT_PREFIX.len()..])
        })
        .and_then(|line| serde_json::from_str::<WorkerReport>(line).ok());
    let stderr = String::from_utf8_lossy(&stderr).into_owned();
    if killed {
        return Err(LoadError::CompileLimit(CompileLimitKind::WallTime(
            limits.wall_time(),
        )));
    }
    let status = status.map_err(|err| {
        LoadError::CompileWorker(format!("cannot wait for the compile worker: {err}"))
    })?;
    if status.success() {
        return match report {
            Some(report) if report.error.is_none() => {
                let written = std::fs::metadata(output).map(|meta| meta.len()).ok();
                if written != Some(report.artifact_bytes) || report.artifact_bytes == 0 {
                    return Err(LoadError::CompileWorker(format!(
                        "the compile worker reported {} artifact bytes, the file holds {written:?}",
                        report.artifact_bytes
                    )));
                }
                Ok(CompileStats {
                    compile_time: Duration::from_micros(report.compile_time_us),
                    peak_memory_bytes: Some(report.peak_memory_bytes),
                })
            }
            _ => Err(LoadError::CompileWorker(format!(
                "the compile worker exited without a report after {elapsed:?}: {}",
                tail(&stderr)
            ))),
        };
    }
    Err(classify_failure(status, report, &stderr, limits))
}

/// Why a worker that did not succeed failed: the component's fault (a limit, or
/// invalid code) or the host's.
fn classify_failure(
    status: ExitStatus,
    report: Option<WorkerReport>,
    stderr: &str,
    limits: CompileLimits,
) -> LoadError {
    use std::os::unix::process::ExitStatusExt as _;
    let memory = || LoadError::CompileLimit(CompileLimitKind::Memory(limits.memory_bytes));
    let out_of_memory = |text: &str| {
        text.contains("memory allocation of")
            || text.contains("Cannot allocate memory")
            || text.contains("out of memory")
    };
    if let Some(report) = report
        && let Some(error) = report.error
    {
        if out_of_memory(&error) {
            return memory();
        }
        return if report.invalid {
            LoadError::Compile(error)
        } else {
            LoadError::CompileWorker(error)
        };
    }
    match status.signal() {
        // The soft limit sends SIGXCPU; the hard one, a second later, SIGKILL (which
        // is also how the kernel's OOM killer ends a process).
        Some(libc::SIGXCPU) => LoadError::CompileLimit(CompileLimitKind::CpuTime(limits.cpu_time)),
        Some(libc::SIGKILL) if !out_of_memory(stderr) => {
            LoadError::CompileLimit(CompileLimitKind::CpuTime(limits.cpu_time))
        }
        // An artifact larger than the memory limit.
        Some(libc::SIGXFSZ) => memory(),
        // Rust aborts when an allocation fails; the address-space limit makes large
        // allocations fail, as do thread stacks that cannot be mapped.
        Some(_) if out_of_memory(stderr) => memory(),
        Some(libc::SIGSEGV | libc::SIGBUS) if stderr.contains("overflow") => memory(),
        Some(signal) => LoadError::CompileWorker(format!(
            "the compile worker died of signal {signal}: {}",
            tail(stderr)
        )),
        None if out_of_memory(stderr) => memory(),
        None => LoadError::CompileWorker(format!(
            "the compile worker failed ({status}): {}",
            tail(stderr)
        )),
    }
}

fn tail(text: &str) -> String {
    let text = text.trim();
    let start = text
        .char_indices()
        .rev()
        .nth(2000)
        .map_or(0, |(index, _)| index);
    text[start..].lines().collect::<Vec<_>>().join(" ")
}

/// Feeds the worker its input, collects its output and waits for it, killing it past
/// `wall`. Returns its status, stdout, stderr and whether it was killed here.
fn supervise(
    child: &mut Child,
    bytes: &[u8],
    wall: Duration,
) -> (std::io::Result<ExitStatus>, Vec<u8>, Vec<u8>, bool) {
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let deadline = Instant::now() + wall;
    std::thread::scope(|scope| {
        scope.spawn(move || {
            if let Some(mut stdin) = stdin {
                // A worker that dies early closes the pipe: its status says why.
                let _ = stdin.write_all(bytes);
            }
        });
        let out = scope.spawn(move || read_bounded(stdout, STDOUT_KEEP));
        let err = scope.spawn(move || read_bounded(stderr, STDERR_KEEP));
        let mut killed = false;
        let mut pause = Duration::from_millis(1);
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Ok(status),
                Ok(None) => {}
                Err(err) => break Err(err),
            }
            if !killed && Instant::now() >= deadline {
                // Not reaped yet, so the pid is still this child's.
                let _ = child.kill();
                killed = true;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        };
        let stdout = out.join().unwrap_or_default();
        let stderr = err.join().unwrap_or_default();
        (status, stdout, stderr, killed)
    })
}

/// Reads a pipe to its end, keeping at most `keep` bytes, so a chatty worker can
/// neither block on a full pipe nor make the parent hold its output.
fn read_bounded(pipe: Option<impl std::io::Read>, keep: usize) -> Vec<u8> {
    let Some(mut pipe) = pipe else {
        return Vec::new();
    };
    let mut kept = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        match pipe.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(read) => {
                let room = keep.saturating_sub(kept.len()).min(read);
                kept.extend_from_slice(&buffer[..room]);
            }
        }
    }
    kept
}

/// Sets the worker's limits; runs in the child between fork and exec.
fn apply_child_limits(cpu_seconds: u64, memory_bytes: u64) -> std::io::Result<()> {
    fn set(resource: libc::__rlimit_resource_t, soft: u64, hard: u64) -> std::io::Result<()> {
        let mut current = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `getrlimit` writes one `rlimit` into the valid pointer it is given.
        if unsafe { libc::getrlimit(resource, &mut current) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // An unprivileged process cannot raise its hard limit: stay under it.
        let wanted = libc::rlimit {
            rlim_cur: soft.min(current.rlim_max),
            rlim_max: hard.min(current.rlim_max),
        };
        // SAFETY: `setrlimit` reads one `rlimit` from the valid pointer it is given.
        if unsafe { libc::setrlimit(resource, &wanted) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
    // SIGXCPU at the soft limit; SIGKILL a second later if it is caught or ignored.
    set(libc::RLIMIT_CPU, cpu_seconds, cpu_seconds + 1)?;
    set(libc::RLIMIT_AS, memory_bytes, memory_bytes)?;
    set(libc::RLIMIT_FSIZE, memory_bytes, memory_bytes)?;
    // A killed compiler must not write gigabytes of core dump.
    set(libc::RLIMIT_CORE, 0, 0)?;
    // Requests keep priority over a compile when the host is short of CPU.
    // SAFETY: `setpriority` on this process takes plain integers.
    unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 10) };
    Ok(())
}

/// The worker's side: reads the request from [`WORKER_REQUEST_ENV`] and the
/// component from stdin, compiles it, writes the artifact and prints the report line.
/// Returns the process's exit code (0: compiled).
///
/// An embedder's binary calls this from a hidden subcommand (`sluice compile-worker`)
/// and names that command in [`Compiler::Worker`]. It must be called before the
/// binary starts threads of its own: the worker's address-space limit counts them.
pub fn worker_main() -> std::process::ExitCode {
    let report = match run_worker() {
        Ok(report) => report,
        Err(report) => report,
    };
    let failed = report.error.is_some();
    let line = serde_json::to_string(&report).unwrap_or_else(|_| "{}".to_string());
    let mut stdout = std::io::stdout().lock();
    let written = writeln!(stdout, "{REPORT_PREFIX}{line}").and_then(|()| stdout.flush());
    if failed || written.is_err() {
        std::process::ExitCode::from(1)
    } else {
        std::process::ExitCode::SUCCESS
    }
}

fn run_worker() -> Result<WorkerReport, WorkerReport> {
    let fail = |message: String| WorkerReport {
        error: Some(message),
        ..WorkerReport::default()
    };
    let request = std::env::var(WORKER_REQUEST_ENV)
        .map_err(|err| fail(format!("{WORKER_REQUEST_ENV}: {err}")))?;
    let request: WorkerRequest = serde_json::from_str(&request)
        .map_err(|err| fail(format!("{WORKER_REQUEST_ENV} is not a request: {err}")))?;
    let mut bytes = Vec::new();
    std::io::stdin()
        .read_to_end(&mut bytes)
        .map_err(|err| fail(format!("cannot read the component from stdin: {err}")))?;
    let mut config =
        crate::engine::compile_config(request.engine.max_wasm_stack, request.engine.opt_level);
    // One compile takes one core: the host's compile concurrency is then the number
    // of cores compiles can take. Not part of the compatibility hash.
    config.parallel_compilation(false);
    let engine = wasmtime::Engine::new(&config)
        .map_err(|err| fail(format!("cannot create the engine: {err:#}")))?;
    let compatibility = crate::artifacts::compatibility_dir(&engine);
    if compatibility != request.engine.compatibility {
        return Err(fail(format!(
            "the worker's engine ({compatibility}) differs from the parent's ({})",
            request.engine.compatibility
        )));
    }
    let started = Instant::now();
    let artifact = engine
        .precompile_component(&bytes)
        .map_err(|err| WorkerReport {
            error: Some(format!("{err:#}")),
            invalid: true,
            ..WorkerReport::default()
        })?;
    let compile_time = started.elapsed();
    drop(bytes);
    let write = |path: &Path| -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(path)?;
        file.write_all(&artifact)?;
        file.sync_all()
    };
    write(&request.output).map_err(|err| {
        fail(format!(
            "cannot write the artifact to {}: {err}",
            request.output.display()
        ))
    })?;
    Ok(WorkerReport {
        error: None,
        invalid: false,
        artifact_bytes: artifact.len() as u64,
        compile_time_us: u64::try_from(compile_time.as_micros()).unwrap_or(u64::MAX),
        peak_memory_bytes: self_max_rss_bytes(),
    })
}

/// This process's peak resident set size in bytes, 0 when the kernel does not say.
/// The compile worker reports it, and the host's `sluice run` too.
pub fn self_max_rss_bytes() -> u64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `getrusage` writes a `rusage` into the pointer it is given, which points
    // to a zeroed, properly aligned value owned by this frame; a zeroed `rusage` (all
    // integers) is valid whether or not the call wrote it.
    let usage = unsafe {
        if libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) != 0 {
            return 0;
        }
        usage.assume_init()
    };
    // Linux reports kilobytes.
    u64::try_from(usage.ru_maxrss)
        .unwrap_or(0)
        .saturating_mul(1024)
}

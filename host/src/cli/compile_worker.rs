//! `sluice compile-worker` (hidden): the compile worker the server and `sluice run`
//! start for every compilation of untrusted bytes, under the CPU-time, address-space
//! and wall-clock limits the parent sets (`sluice_runtime::compile`). It reads its
//! request from the environment and the component from stdin, and prints one report
//! line; it is not meant to be run by hand.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use sluice_runtime::{CompileLimits, Compiler, WorkerCommand};

/// Arguments of `sluice compile-worker`: none; the request is in
/// `SLUICE_COMPILE_WORKER_REQUEST`.
#[derive(Debug, Args)]
pub struct CompileWorkerArgs {}

/// The subcommand's name, as the parent passes it.
pub const SUBCOMMAND: &str = "compile-worker";

/// Runs the worker. Called before the async runtime starts, so the worker's
/// address-space limit is spent on the compiler, not on idle executor threads.
pub fn run(_args: CompileWorkerArgs) -> ExitCode {
    sluice_runtime::compile::worker_main()
}

/// The compiler of a `sluice` process: this very binary, re-executed as
/// `sluice compile-worker` under `limits`. Falls back to `sluice` on the `PATH` when
/// the binary's own path is unknown (it always is on Linux).
pub fn worker(limits: CompileLimits) -> Compiler {
    let program = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("sluice"));
    Compiler::Worker(WorkerCommand::new(program, limits).arg(OsString::from(SUBCOMMAND)))
}

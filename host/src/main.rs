//! Entry point of the `sluice` binary: parses the command line, sends diagnostics to
//! stderr (stdout carries the commands' JSON), runs the command and turns its result
//! into the process exit code.

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::Parser as _;
use sluice::cli::{Cli, ExitStatus};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // `--help` and `--version` arrive as "errors" meant for stdout; everything
            // else is a usage error, reported with clap's own message.
            let status = if err.use_stderr() {
                ExitStatus::Usage
            } else {
                ExitStatus::Success
            };
            // Nothing sensible is left to do if the terminal is gone.
            let _ = err.print();
            return status.into();
        }
    };
    // The compile worker runs under an address-space limit: no tracing, no async
    // runtime threads, only the compiler.
    let cli = match cli.command {
        sluice::cli::Command::CompileWorker(args) => return sluice::cli::compile_worker::run(args),
        command => Cli { command },
    };
    init_tracing();

    let executor = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(executor) => executor,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitStatus::Internal.into();
        }
    };
    executor.block_on(cli.execute()).into()
}

/// Logs go to stderr so that stdout stays a single JSON document. `RUST_LOG` chooses
/// the verbosity; an absent or unparsable value falls back to warnings only.
fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes would litter logs captured by scripts and CI.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

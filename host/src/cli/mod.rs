//! The command line of `sluice`: the clap definition of the top-level [`Cli`] and its
//! subcommands, and the dispatch from a parsed command to the module that runs it.
//! Each subcommand owns a module (`run`, `flow`, ...); exit codes live in [`exit`].

pub mod byte_size;
pub mod compile_worker;
pub mod exit;
pub mod flow;
pub mod run;
pub mod serve;
pub mod tenant;

use clap::{Parser, Subcommand};

pub use self::exit::ExitStatus;

/// Sluice: runs untrusted WebAssembly components in sandboxes with fuel, memory,
/// time, output and log budgets.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, after_help = exit::EXIT_CODES_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands of `sluice`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one call of a component in a fresh sandbox and print its outcome, metering
    /// and logs as one JSON document on stdout.
    #[command(after_help = exit::EXIT_CODES_HELP)]
    Run(run::RunArgs),
    /// Validate a flow definition, or run one of its flows locally and print the
    /// execution record.
    Flow(flow::FlowArgs),
    /// Run the Sluice server (HTTP API and webhooks) on its embedded store.
    Serve(serve::ServeArgs),
    /// Create and list tenants (operator commands on the data directory).
    Tenant(tenant::TenantArgs),
    /// Compile one component under limits (started by `serve` and `run`; internal).
    #[command(name = "compile-worker", hide = true)]
    CompileWorker(compile_worker::CompileWorkerArgs),
}

impl Cli {
    /// Runs the parsed command. Errors are reported on stderr here, so the caller
    /// only has an exit status left to return.
    pub async fn execute(self) -> ExitStatus {
        match self.command {
            Command::Run(args) => run::run(args).await,
            Command::Flow(args) => flow::run(args).await,
            Command::Serve(args) => serve::serve(args).await,
            Command::Tenant(args) => tenant::tenant(args).await,
            // `main` runs the worker before the async runtime starts; reaching this
            // means a caller skipped that, which is still served, synchronously.
            Command::CompileWorker(args) => {
                if compile_worker::run(args) == std::process::ExitCode::SUCCESS {
                    ExitStatus::Success
                } else {
                    ExitStatus::Internal
                }
            }
        }
    }
}

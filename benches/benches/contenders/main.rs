//! The Sluice side of the side-by-side cold-start suite (`benches/run.sh`, which runs
//! every contender in its own process and prints one table). Subcommands:
//!
//! - `contender sluice|floor|bwrap [--warmup N] [--samples N] [--seconds S] [--threads 1,2]`:
//!   measures one contender (see [`sluice_benches::suite`] for the protocol) and prints
//!   one JSON line.
//!   - `sluice`: `Runtime::execute` of `examples/hello`'s `echo` on a fresh instance
//!     (pooling allocator, default `Limits`, a log sink that discards).
//!   - `floor`: the raw-wasmtime floor (`sluice_benches::floor`) on the same component
//!     (`--decommit-batch N`: an experiment with the pool's `decommit_batch_size`).
//!   - `bwrap --program PATH`: a process per execution under `bwrap --unshare-all`
//!     (see `process.rs`).
//!   - `sluice-ts|sluice-py|sluice-code [--component PATH]`: the same job in a TypeScript
//!     guest (`benches/guests/echo-ts`), a Python guest (`benches/guests/echo-py`), or an
//!     inline code step run by the code engine, each built when no PATH is given.
//! - `cold [--upload-samples N] [--restart-samples N]`: the truly cold paths of Sluice
//!   for `hello`, `github` and the multi-megabyte `benches/guests/large`, each sample
//!   in a new process (`cold.rs`); one JSON line per component and path.
//! - `inflight [--executions N]`: RSS with N executions in flight at once (`inflight.rs`).
//! - `report FILE`: renders the JSON lines of a run as the suite's tables.
//!
//! Without a subcommand (`cargo test --all-targets` runs bench binaries that way) it
//! makes a short smoke run of the `sluice` and `floor` contenders.

mod cold;
mod inflight;
mod jobs;
mod process;

use std::process::ExitCode;

use sluice_benches::report::Results;
use sluice_benches::suite::{self, Protocol};

fn main() -> ExitCode {
    // `cargo bench` adds `--bench`; it means nothing here.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| arg != "--bench")
        .collect();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("contenders: {message}");
            ExitCode::FAILURE
        }
    }
}

const USAGE: &str = "usage: contenders contender (sluice|floor [--decommit-batch N]|bwrap --program PATH|sluice-ts|sluice-py|sluice-code [--component PATH]) [--warmup N] [--samples N] [--seconds S] [--threads 1,2]
       contenders cold [--upload-samples N] [--restart-samples N]
       contenders cold-child (upload|restart) --component PATH --cache DIR --call CALL [--hash HEX] [--spawned-at NS]
       contenders inflight [--executions N]
       contenders report FILE";

fn run(args: Vec<String>) -> Result<(), String> {
    let Some((command, rest)) = args.split_first() else {
        return smoke();
    };
    let rest = rest.to_vec();
    match command.as_str() {
        "contender" => {
            let mut protocol = Protocol::quick();
            let rest = protocol.apply(rest)?;
            let (name, options) = rest
                .split_first()
                .ok_or_else(|| format!("which contender?\n{USAGE}"))?;
            let line = match name.as_str() {
                "sluice" if options.is_empty() => jobs::measure(name, &protocol, None)?,
                "sluice-ts" | "sluice-py" | "sluice-code" => match options {
                    [] => jobs::measure_guest(name, &protocol, None, None)?,
                    [flag, path] if flag == "--component" => {
                        jobs::measure_guest(name, &protocol, None, Some(path))?
                    }
                    _ => return Err(format!("unknown {name} options {options:?}\n{USAGE}")),
                },
                "floor" => match options {
                    [] => jobs::measure(name, &protocol, None)?,
                    [flag, batch] if flag == "--decommit-batch" => {
                        jobs::measure(name, &protocol, Some(suite::positive(batch)?))?
                    }
                    _ => return Err(format!("unknown floor options {options:?}\n{USAGE}")),
                },
                "bwrap" => process::measure(&protocol, options)?,
                other => return Err(format!("unknown contender `{other}`\n{USAGE}")),
            };
            println!("{line}");
            Ok(())
        }
        "cold" => cold::run(rest),
        "cold-child" => cold::child(rest),
        "inflight" => inflight::run(rest),
        "report" => {
            let [file] = rest.as_slice() else {
                return Err(USAGE.to_string());
            };
            let text = std::fs::read_to_string(file)
                .map_err(|err| format!("cannot read {file}: {err}"))?;
            print!("{}", Results::parse(&text)?.render());
            Ok(())
        }
        "-h" | "--help" => Err(USAGE.to_string()),
        other => Err(format!("unknown command `{other}`\n{USAGE}")),
    }
}

/// A short run of the two in-process contenders, so `cargo test --all-targets` checks
/// that the suite works end to end; the numbers mean nothing in a debug build.
fn smoke() -> Result<(), String> {
    let protocol = Protocol {
        warmup: 5,
        samples: 20,
        seconds: 0.2,
        threads: vec![1, 2],
    };
    let mut lines = String::new();
    for name in ["sluice", "floor"] {
        let line = jobs::measure(name, &protocol, None)?;
        lines.push_str(&line.to_string());
        lines.push('\n');
    }
    println!("smoke run (not for reporting; run benches/run.sh):");
    print!("{}", Results::parse(&lines)?.render());
    Ok(())
}

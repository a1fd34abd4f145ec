//! One compile, measured: `sluice-winch-probe COMPILER SHAPE EPOCHS` compiles the
//! compile bomb's core module of `SHAPE` (`LOCALSxBRANCHES`, a core module) with `COMPILER`
//! (`cranelift-none`, `cranelift-speed` or `winch`), with fuel metering and, if
//! `EPOCHS` is `1`, epoch interruption (what Sluice's engine enables),. Prints one line: compiler, shape, result, compile seconds (CPU of
//! this process), peak RSS. One process per compile, so the peak is this compile's.

use std::process::ExitCode;

use compile_bomb::Shape;
use wasmtime::{Config, Engine, Module, OptLevel, Strategy};

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct it is given and reads nothing else.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let seconds = |time: libc::timeval| time.tv_sec as f64 + time.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

fn peak_rss_mib() -> i64 {
    // SAFETY: as above.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    usage.ru_maxrss / 1024
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [compiler, shape, epochs] = args.as_slice() else {
        eprintln!("usage: sluice-winch-probe cranelift-none|cranelift-speed|winch LOCALSxBRANCHES 0|1");
        return ExitCode::from(64);
    };
    let Some((locals, branches)) = shape
        .split_once('x')
        .and_then(|(l, b)| Some((l.parse().ok()?, b.parse().ok()?)))
    else {
        eprintln!("bad shape `{shape}`");
        return ExitCode::from(64);
    };
    let mut config = Config::new();
    config.consume_fuel(true);
    config.epoch_interruption(epochs == "1");
    // One compile thread, as in Sluice's compile worker: the crate leaves wasmtime's
    // `parallel-compilation` feature off.
    match compiler.as_str() {
        "cranelift-none" => {
            config.strategy(Strategy::Cranelift);
            config.cranelift_opt_level(OptLevel::None);
        }
        "cranelift-speed" => {
            config.strategy(Strategy::Cranelift);
            config.cranelift_opt_level(OptLevel::Speed);
        }
        "winch" => {
            config.strategy(Strategy::Winch);
        }
        other => {
            eprintln!("unknown compiler `{other}`");
            return ExitCode::from(64);
        }
    }
    let bytes = compile_bomb::core_module(Shape { locals, branches });
    let size_kib = bytes.len() >> 10;
    let line = |result: &str, compile: f64| {
        println!(
            "{compiler:<16} epochs={epochs} {shape:>12} {size_kib:>5} KiB  {result:<40} compile {compile:>8.2} s CPU  peak RSS {:>6} MiB",
            peak_rss_mib()
        );
    };
    let engine = match Engine::new(&config) {
        Ok(engine) => engine,
        Err(err) => {
            line(&format!("engine refused: {err}"), 0.0);
            return ExitCode::SUCCESS;
        }
    };
    let cpu = cpu_seconds();
    let module = Module::new(&engine, &bytes);
    let compile = cpu_seconds() - cpu;
    match module {
        Ok(_) => line("compiled", compile),
        Err(err) => line(&format!("compile error: {err:#}"), compile),
    }
    ExitCode::SUCCESS
}

//! One compile, measured: `sluice-winch-probe COMPILER SHAPE EPOCHS` compiles the
//! compile bomb's core module of `SHAPE` (`LOCALSxBRANCHES`, a core module) with `COMPILER`
//! (`cranelift-none`, `cranelift-speed` or `winch`), with fuel metering and, if
//! `EPOCHS` is `1`, epoch interruption (what Sluice's engine enables),. Prints one line: compiler, shape, result, compile seconds (CPU of
//! this process), peak RSS. One process per compile, so the peak is this compile's.
//!
//! `sluice-winch-probe component COMPILER FILE RUNS` compiles a Sluice component (a
//! JavaScript or Python guest, say) the same way, then instantiates it `RUNS` times, a
//! fresh store each time, and calls its `manifest()` export: what the compiler's code
//! costs per execution (instantiation and the guest's own code; clocks and random bytes
//! answer constants, every other import traps, and `manifest()` calls no other). Prints compile CPU seconds, artifact size and the median
//! and p99 of instantiate + call.

use std::process::ExitCode;

use compile_bomb::Shape;
use std::time::Instant;

use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, Module, OptLevel, Store, Strategy};

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

fn configure(config: &mut Config, compiler: &str) -> Result<(), String> {
    match compiler {
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
        other => return Err(format!("unknown compiler `{other}`")),
    }
    Ok(())
}

fn component(compiler: &str, file: &str, runs: usize) -> Result<(), String> {
    let mut config = Config::new();
    config.consume_fuel(true);
    config.epoch_interruption(true);
    configure(&mut config, compiler)?;
    let engine = Engine::new(&config).map_err(|err| format!("engine refused: {err}"))?;
    let bytes = std::fs::read(file).map_err(|err| format!("{file}: {err}"))?;
    let cpu = cpu_seconds();
    let component = Component::new(&engine, &bytes).map_err(|err| format!("compile: {err:#}"))?;
    let compile = cpu_seconds() - cpu;
    let artifact = component
        .serialize()
        .map_err(|err| format!("serialize: {err:#}"))?
        .len();
    let mut linker: Linker<()> = Linker::new(&engine);
    // What a JavaScript or Python runtime asks for on its own (clocks, random bytes):
    // constants here, every other import a trap.
    let clock = |_: wasmtime::StoreContextMut<'_, ()>, (): ()| Ok((1_000_000_u64,));
    linker
        .instance("wasi:clocks/monotonic-clock@0.2.12")
        .and_then(|mut instance| instance.func_wrap("now", clock))
        .map_err(|err| format!("link: {err:#}"))?;
    linker
        .instance("wasi:random/random@0.2.12")
        .and_then(|mut instance| {
            instance.func_wrap("get-random-u64", |_, (): ()| Ok((4_u64,)))?;
            instance.func_wrap("get-random-bytes", |_, (n,): (u64,)| {
                Ok((vec![4_u8; usize::try_from(n).unwrap_or(0).min(1 << 16)],))
            })
        })
        .map_err(|err| format!("link: {err:#}"))?;
    linker
        .define_unknown_imports_as_traps(&component)
        .map_err(|err| format!("link: {err:#}"))?;
    let pre = linker
        .instantiate_pre(&component)
        .map_err(|err| format!("pre-instantiate: {err:#}"))?;
    let mut times = Vec::with_capacity(runs);
    let mut manifest_len = 0;
    for _ in 0..runs {
        let started = Instant::now();
        let mut store = Store::new(&engine, ());
        store.set_fuel(u64::MAX / 2).map_err(|err| err.to_string())?;
        store.set_epoch_deadline(u64::MAX / 2);
        let instance = pre
            .instantiate(&mut store)
            .map_err(|err| format!("instantiate: {err:#}"))?;
        let interface = instance
            .get_export_index(&mut store, None, "sluice:flow/connector@0.1.0")
            .ok_or("no sluice:flow/connector export")?;
        let func = instance
            .get_export_index(&mut store, Some(&interface), "manifest")
            .ok_or("no manifest export")?;
        let manifest = instance
            .get_typed_func::<(), (String,)>(&mut store, &func)
            .map_err(|err| format!("manifest type: {err:#}"))?;
        let (text,) = manifest
            .call(&mut store, ())
            .map_err(|err| format!("manifest(): {err:#}"))?;
        manifest_len = text.len();
        times.push(started.elapsed().as_secs_f64() * 1e6);
    }
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    println!(
        "{compiler:<16} {file}  compile {compile:>7.2} s CPU  artifact {:>6.1} MiB  instantiate+manifest() median {:>8.1} us  p99 {:>8.1} us  ({runs} runs, manifest {manifest_len} bytes)",
        artifact as f64 / (1 << 20) as f64,
        at(0.5),
        at(0.99),
    );
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [mode, compiler, file, runs] = args.as_slice()
        && mode == "component"
    {
        let runs = runs.parse().unwrap_or(200).max(1);
        return match component(compiler, file, runs) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                println!("{compiler:<16} {file}  failed: {err}");
                ExitCode::FAILURE
            }
        };
    }
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
    if let Err(err) = configure(&mut config, compiler) {
        eprintln!("{err}");
        return ExitCode::from(64);
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

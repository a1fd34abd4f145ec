//! A process per execution inside a bubblewrap sandbox.
//!
//! One execution: spawn `bwrap --unshare-all --die-with-parent --new-session --clearenv
//! --cap-drop ALL --ro-bind PROGRAM /job /job` with pipes, write the JSON input to its
//! stdin, read the JSON output from its stdout, wait for it to exit. The sandbox gets new
//! user, pid, network, ipc, uts and cgroup namespaces (`--unshare-all`), no capabilities,
//! no environment, and a file system that holds nothing but the job.
//!
//! The job (`benches/contenders/process/job.c`, built static by `run.sh`) reads the
//! input, writes one log line to stderr and the input back to stdout: the cheapest
//! program a process per execution can run, so this is the best case of that model (a
//! Python or Node worker adds its interpreter's start-up, tens of milliseconds). Its
//! stderr goes to /dev/null, as Sluice's contender discards its log line.
//!
//! Peak RSS: the driver's own VmHWM plus, for each execution in flight at once (as many
//! as the largest thread count), the summed VmRSS of the processes of one execution
//! (bwrap, its init process in the new pid namespace and the job), read from `/proc`
//! while the job waits for its input. (`getrusage(RUSAGE_CHILDREN)` cannot be used: a
//! child spawned with `CLONE_VM` inherits the driver's own peak.)

use std::io::{Read as _, Write as _};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::Value;
use sluice_benches::suite::{self, ContenderLine, Protocol};

use crate::jobs::INPUT;

struct Sandbox {
    bwrap: String,
    program: String,
}

impl Sandbox {
    fn command(&self) -> Result<std::process::Child, String> {
        Command::new(&self.bwrap)
            .args([
                "--unshare-all",
                "--die-with-parent",
                "--new-session",
                "--clearenv",
                "--cap-drop",
                "ALL",
                "--ro-bind",
                &self.program,
                "/job",
                "/job",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|err| format!("cannot run {}: {err}", self.bwrap))
    }

    fn execute(&self) -> Result<(), String> {
        let child = self.command()?;
        self.finish(child)
    }

    /// Feeds the input, reads and checks the output, waits for the exit.
    fn finish(&self, mut child: std::process::Child) -> Result<(), String> {
        {
            let mut stdin = child.stdin.take().ok_or("no stdin pipe")?;
            stdin
                .write_all(INPUT.as_bytes())
                .map_err(|err| format!("cannot write the input: {err}"))?;
        }
        let mut output = String::new();
        child
            .stdout
            .take()
            .ok_or("no stdout pipe")?
            .read_to_string(&mut output)
            .map_err(|err| format!("cannot read the output: {err}"))?;
        let status = child
            .wait()
            .map_err(|err| format!("cannot wait for bwrap: {err}"))?;
        if !status.success() {
            return Err(format!("the sandboxed job failed: {status}"));
        }
        if output != INPUT {
            return Err(format!("the sandboxed job returned {output:?}"));
        }
        Ok(())
    }
}

/// `(pid, parent pid, command name)` of every process in `/proc`.
fn processes() -> Vec<(u32, u32, String)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
            let open = stat.find('(')?;
            let close = stat.rfind(')')?;
            let comm = stat.get(open + 1..close)?.to_string();
            let ppid = stat
                .get(close + 2..)?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some((pid, ppid, comm))
        })
        .collect()
}

/// The descendants of `root` (pids and command names).
fn descendants(root: u32) -> Vec<(u32, String)> {
    let all = processes();
    let mut found: Vec<(u32, String)> = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for (pid, ppid, comm) in &all {
            if *ppid == parent && !found.iter().any(|(seen, _)| seen == pid) {
                found.push((*pid, comm.clone()));
                frontier.push(*pid);
            }
        }
    }
    found
}

fn vm_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                line.strip_prefix("VmRSS:")?
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse()
                    .ok()
            })
        })
        .unwrap_or(0)
}

impl Sandbox {
    /// RSS of the processes of one execution in flight (bwrap, its init process in the
    /// new pid namespace, the job), summed, in KiB: the job is held at its read of
    /// stdin while they are measured.
    fn one_execution_rss_kib(&self) -> Result<(u64, usize), String> {
        let mut child = self.command()?;
        let root = child.id();
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        let tree = loop {
            let tree = descendants(root);
            if tree.iter().any(|(_, comm)| comm == "job") {
                break tree;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err("the sandboxed job never started".into());
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        };
        let rss = vm_rss_kib(root) + tree.iter().map(|(pid, _)| vm_rss_kib(*pid)).sum::<u64>();
        self.finish(child)?;
        Ok((rss, tree.len() + 1))
    }
}

fn version(bwrap: &str) -> String {
    Command::new(bwrap)
        .arg("--version")
        .output()
        .ok()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|text| !text.is_empty())
        .unwrap_or_else(|| "bubblewrap (unknown version)".into())
}

/// `options`: `--program PATH` (the job, required) and `--bwrap PATH` (default `bwrap`).
pub fn measure(protocol: &Protocol, options: &[String]) -> Result<Value, String> {
    let mut sandbox = Sandbox {
        bwrap: "bwrap".to_string(),
        program: String::new(),
    };
    let mut options = options.iter();
    while let Some(option) = options.next() {
        let mut value = || {
            options
                .next()
                .cloned()
                .ok_or_else(|| format!("{option} needs a value"))
        };
        match option.as_str() {
            "--program" => sandbox.program = value()?,
            "--bwrap" => sandbox.bwrap = value()?,
            other => return Err(format!("unknown bwrap option `{other}`")),
        }
    }
    if sandbox.program.is_empty() {
        return Err("the bwrap contender needs --program PATH (a static job binary)".into());
    }
    sandbox.program = std::fs::canonicalize(&sandbox.program)
        .map_err(|err| format!("{}: {err}", sandbox.program))?
        .to_string_lossy()
        .into_owned();

    let started = Instant::now();
    sandbox.execute()?;
    let setup = started.elapsed();
    let latency = suite::latency(protocol.warmup, protocol.samples, || sandbox.execute())?;
    let mut rates = Vec::new();
    for &threads in &protocol.threads {
        rates.push(suite::throughput(threads, protocol.seconds, || {
            Ok(|| sandbox.execute())
        })?);
    }
    let (sandbox_kib, processes) = sandbox.one_execution_rss_kib()?;
    let in_flight = protocol.threads.iter().copied().max().unwrap_or(1) as u64;
    let driver = suite::peak_rss_kib();
    Ok(ContenderLine {
        contender: "bwrap",
        label: "process per execution (bubblewrap)",
        what: "spawn bwrap --unshare-all --die-with-parent --new-session --clearenv --cap-drop ALL --ro-bind JOB /job /job; JSON in through stdin, the log line to stderr (/dev/null), JSON out through stdout; JOB = a static C program (benches/contenders/process/job.c)",
        version: version(&sandbox.bwrap),
        setup,
        protocol,
        latency,
        rates,
        peak_rss_kib: driver + in_flight * sandbox_kib,
        rss_source: &format!(
            "driver VmHWM {driver} KiB + {in_flight} executions in flight x {sandbox_kib} KiB (VmRSS of the {processes} processes of one execution: bwrap, its pid-namespace init, the job)"
        ),
    }
    .to_json())
}

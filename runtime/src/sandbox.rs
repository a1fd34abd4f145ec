//! One execution in its own sandbox: a new `Store` with the execution's limits, a new
//! instance from the component's `InstancePre`, one call, and the classification of
//! however it ended into an [`Outcome`] with its [`Metering`].

use std::time::{Duration, Instant};

use wasmtime::{Engine, Store, Trap, UpdateDeadline, WasmBacktrace};
use wasmtime_wasi::I32Exit;

use crate::artifacts::{LoadedComponent, Pre};
use crate::bindings::wit;
use crate::capabilities::log::LogLevel;
use crate::capabilities::{Capabilities, HostContext, HostTrap};
use crate::error::ExecuteError;
use crate::fair_share::Turns;
use crate::limits::Limits;
use crate::outcome::{Call, ExecutionReport, Metering, Outcome, Returned};
use crate::types::{ExecutionContext, GuestError};

/// Fuel between cooperative yields: a few milliseconds of guest compute. Small enough
/// that fuel counts after a timeout are accurate to well under 1 %, large enough that
/// the yields cost nothing measurable (a short execution never reaches one).
const FUEL_YIELD_INTERVAL: u64 = 10_000_000;

/// How a call ended before classification.
enum Ended {
    Returned(Returned),
    GuestError(GuestError),
    Trapped(wasmtime::Error),
    /// Instantiation failed; the guest or the host may be at fault.
    NotInstantiated(wasmtime::Error),
}

/// How an execution shares the executor with the others.
pub(crate) struct Sharing {
    /// The period of its yields (and the granularity of its deadline).
    pub(crate) epoch_tick: Duration,
    /// Its place in its tenant's queue for turns at running guest code.
    pub(crate) turns: Turns,
}

/// Runs `call` on a fresh instance of `component`. The caller holds a concurrency
/// permit for the whole duration, the store's drop included.
pub(crate) async fn execute(
    engine: &Engine,
    component: &LoadedComponent,
    call: Call,
    context: ExecutionContext,
    caps: Capabilities,
    limits: Limits,
    sharing: Sharing,
) -> Result<ExecutionReport, ExecuteError> {
    let Sharing { epoch_tick, turns } = sharing;
    let started = Instant::now();
    let deadline = started + limits.timeout;
    let wit_context = wit::ExecutionContext::from(&context);
    let mut store = Store::new(
        engine,
        HostContext::new(context, caps, limits.clone(), deadline),
    );
    store.limiter(|host| &mut host.limiter);
    // A fresh store starts with no fuel; these cannot fail on an engine that meters fuel.
    let _ = store.set_fuel(limits.fuel);
    // Compiled code keeps its fuel count in a register and writes it back only on calls
    // and fuel checks, not on epoch interruptions; a periodic fuel yield writes it back,
    // so the fuel reported after a timeout is short by less than one interval.
    let _ = store.fuel_async_yield_interval(Some(FUEL_YIELD_INTERVAL));
    // Guest code yields to the executor every epoch tick (so the tokio timeout below can
    // fire and other executions can run) and traps once the deadline has passed.
    // `yield_now` rather than `Yield`: a plain yield wakes the task at once, so tokio
    // polls it again from the worker's LIFO slot and polls I/O only every 61 ticks;
    // with guests busy on every worker, a listener's accept or a store reply then
    // waits hundreds of milliseconds. `yield_now` defers the task until the worker has
    // run its other tasks and polled I/O. The mark tells the tenant's turns (below)
    // that this wait is a yield of running guest code.
    let yield_mark = turns.yield_mark();
    store.epoch_deadline_callback(move |store| {
        if Instant::now() >= store.data().deadline {
            Err(wasmtime::Error::new(HostTrap::Deadline))
        } else {
            yield_mark.mark();
            Ok(UpdateDeadline::YieldCustom(
                1,
                Box::pin(tokio::task::yield_now()),
            ))
        }
    });
    store.set_epoch_deadline(1);

    let mut instantiate_time = Duration::ZERO;
    // Guest code is stopped by the epoch callback above, which traps cleanly and keeps
    // the fuel count exact. This timeout is the backstop for time spent inside host
    // calls, which epochs cannot interrupt; it fires a little later so that it does not
    // race the epoch trap (dropping a suspended call loses its fuel count).
    // Instantiation and the call run in the tenant's turns (`fair_share`), so that a
    // tenant's many executions take turns among themselves rather than with everyone.
    let backstop = limits.timeout + epoch_tick * 2;
    let ended = {
        let call = std::pin::pin!(instantiate_and_call(
            &mut store,
            component.pre(),
            &wit_context,
            call,
            &mut instantiate_time,
        ));
        tokio::time::timeout(backstop, turns.run(call)).await
    };
    let wall_time = started.elapsed();

    let outcome = match ended {
        Err(_elapsed) => timeout(&limits),
        // A guest whose runtime turns a refused growth into an error of its own (the
        // JavaScript and Python runtimes throw "out of memory") hit its memory limit:
        // say so, as for a guest that traps on it.
        Ok(Ended::GuestError(error)) => match store.data().limiter.denied() {
            Some(requested) => Outcome::MemoryLimit {
                limit: store.data().limiter.limit() as u64,
                requested: requested as u64,
            },
            None => Outcome::GuestError { error },
        },
        Ok(Ended::Returned(result)) => check_result(result, &limits),
        Ok(Ended::Trapped(error)) => classify_trap(&error, store.data(), &limits, Phase::Call),
        Ok(Ended::NotInstantiated(error)) => {
            // A start function that traps, runs out of fuel, grows memory past the
            // budget, calls `exit` or fails in a host call it made is the guest's
            // doing (the error crossed guest frames, so it carries a wasm backtrace);
            // anything else (no memory for a new instance, a full pool) is the
            // host's, and nothing ran.
            let guest_fault = error.downcast_ref::<Trap>().is_some()
                || error.downcast_ref::<HostTrap>().is_some()
                || error.downcast_ref::<I32Exit>().is_some()
                || error.downcast_ref::<WasmBacktrace>().is_some()
                || store.data().limiter.denied().is_some();
            if !guest_fault {
                return Err(ExecuteError::Instantiate(format!("{error:#}")));
            }
            classify_trap(&error, store.data(), &limits, Phase::Instantiation)
        }
    };
    let remaining = store.get_fuel().unwrap_or(0);
    store.data_mut().finish_egress();
    let host = store.data();
    let outcome = attach_stderr(outcome, host);
    flush_stdio(host);
    let metering = Metering {
        fuel_used: limits.fuel.saturating_sub(remaining),
        peak_memory_bytes: host.limiter.peak() as u64,
        wall_time,
        instantiate_time,
        host_calls: host.host_calls,
        log_bytes: host.log_budget.used(),
    };
    Ok(ExecutionReport { outcome, metering })
}

async fn instantiate_and_call(
    store: &mut Store<HostContext>,
    pre: &Pre,
    ctx: &wit::ExecutionContext,
    call: Call,
    instantiate_time: &mut Duration,
) -> Ended {
    let started = Instant::now();
    match pre {
        Pre::Component(pre) => {
            let instance = match pre.instantiate_async(&mut *store).await {
                Ok(instance) => instance,
                Err(err) => return Ended::NotInstantiated(err),
            };
            *instantiate_time = started.elapsed();
            let connector = instance.sluice_flow_connector();
            let store = &mut *store;
            match call {
                Call::Manifest => finish(
                    connector
                        .call_manifest(store)
                        .await
                        .map(|text| Ok(Returned::Manifest(text))),
                ),
                Call::Action { action, input } => finish(
                    connector
                        .call_run_action(store, ctx, &action, &input)
                        .await
                        .map(|result| result.map(|output| Returned::Output(output.into()))),
                ),
                Call::Trigger {
                    trigger,
                    request,
                    inputs,
                } => finish(
                    connector
                        .call_run_trigger(store, ctx, &trigger, &request.into(), &inputs)
                        .await
                        .map(|result| result.map(|outcome| Returned::Trigger(outcome.into()))),
                ),
                Call::DataSource { name, input } => finish(
                    connector
                        .call_run_data_source(store, ctx, &name, &input)
                        .await
                        .map(|result| result.map(Returned::DataSource)),
                ),
                Call::InstanceDeploy { trigger, inputs } => finish(
                    connector
                        .call_on_instance_deploy(store, ctx, &trigger, &inputs)
                        .await
                        .map(|result| result.map(|()| Returned::Done)),
                ),
                Call::InstanceRemove { trigger, inputs } => finish(
                    connector
                        .call_on_instance_remove(store, ctx, &trigger, &inputs)
                        .await
                        .map(|result| result.map(|()| Returned::Done)),
                ),
                Call::FlowExecution { .. } => unreachable_call(),
            }
        }
        Pre::Flow(pre) => {
            let instance = match pre.instantiate_async(&mut *store).await {
                Ok(instance) => instance,
                Err(err) => return Ended::NotInstantiated(err),
            };
            *instantiate_time = started.elapsed();
            let flow = instance.sluice_flow_code_flow();
            let store = &mut *store;
            match call {
                Call::Manifest => finish(
                    flow.call_manifest(store)
                        .await
                        .map(|text| Ok(Returned::Manifest(text))),
                ),
                Call::FlowExecution { payload } => finish(
                    flow.call_on_execution(store, ctx, &payload)
                        .await
                        .map(|result| result.map(|output| Returned::Output(output.into()))),
                ),
                _ => unreachable_call(),
            }
        }
    }
}

/// `Runtime::execute` checks the call against the world before it gets here.
fn unreachable_call() -> Ended {
    Ended::GuestError(GuestError::fatal(
        "internal error: call does not match the component's world",
    ))
}

fn finish(result: wasmtime::Result<Result<Returned, wit::Error>>) -> Ended {
    match result {
        Ok(Ok(returned)) => Ended::Returned(returned),
        Ok(Err(error)) => Ended::GuestError(error.into()),
        Err(trap) => Ended::Trapped(trap),
    }
}

fn timeout(limits: &Limits) -> Outcome {
    Outcome::Timeout {
        limit_ms: u64::try_from(limits.timeout.as_millis()).unwrap_or(u64::MAX),
    }
}

fn check_result(result: Returned, limits: &Limits) -> Outcome {
    let size = result.size();
    if size > limits.output_bytes {
        return Outcome::OutputTooLarge {
            size,
            limit: limits.output_bytes,
        };
    }
    for document in result.json_documents() {
        if let Err(err) = serde_json::from_str::<serde::de::IgnoredAny>(document) {
            return Outcome::InvalidOutput {
                message: format!("the guest returned JSON that does not parse: {err}"),
            };
        }
        // `IgnoredAny` skips without a depth limit, so a document too deep for every
        // later reader (state, the flow engine) would otherwise pass as `completed`.
        if crate::types::json_too_deep(document) {
            return Outcome::InvalidOutput {
                message: format!(
                    "the guest returned JSON nested more than {} levels deep",
                    crate::types::MAX_JSON_DEPTH
                ),
            };
        }
    }
    Outcome::Completed { result }
}

/// Where guest code was when it failed, for the messages of guest faults.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Instantiation (start functions, `_initialize`, constructors).
    Instantiation,
    /// The call of the export.
    Call,
}

impl Phase {
    fn describe(self) -> &'static str {
        match self {
            Phase::Instantiation => "during instantiation",
            Phase::Call => "during the call",
        }
    }
}

/// Names the limit or fault behind a trap. Limits that are certain (fuel, deadline,
/// host traps) win over the memory flag, which only says a growth was refused at
/// some point.
fn classify_trap(
    error: &wasmtime::Error,
    host: &HostContext,
    limits: &Limits,
    phase: Phase,
) -> Outcome {
    if let Some(trap) = error.downcast_ref::<HostTrap>() {
        return match trap {
            HostTrap::LogLimit { limit } => Outcome::LogLimit { limit: *limit },
            HostTrap::HostCallLimit { limit } => Outcome::HostCallLimit { limit: *limit },
            HostTrap::Deadline => timeout(limits),
        };
    }
    // `wasi:cli/exit` ends the guest without a result, whatever the status: a guest
    // fault, never a host error.
    if let Some(exit) = error.downcast_ref::<I32Exit>() {
        return Outcome::Trap {
            message: format!(
                "the guest exited with status {} {} instead of returning",
                exit.0,
                phase.describe()
            ),
            backtrace: backtrace_of(error),
            stderr: None,
        };
    }
    let trap = error.downcast_ref::<Trap>();
    match trap {
        Some(Trap::OutOfFuel) => return Outcome::OutOfFuel { limit: limits.fuel },
        Some(Trap::Interrupt) => return timeout(limits),
        _ => {}
    }
    if let Some(requested) = host.limiter.denied() {
        return Outcome::MemoryLimit {
            limit: host.limiter.limit() as u64,
            requested: requested as u64,
        };
    }
    let message = match (trap, phase) {
        (Some(trap), _) => trap.to_string(),
        (None, _) if handle_table_full(error) => format!(
            "handle limit of {} live resources exceeded (streams, pollables, HTTP fields, requests, bodies, responses): {error:#}",
            crate::capabilities::MAX_HANDLES
        ),
        (None, Phase::Call) => format!("{error:#}"),
        (None, Phase::Instantiation) => format!("failed {}: {error:#}", phase.describe()),
    };
    Outcome::Trap {
        message,
        backtrace: backtrace_of(error),
        stderr: None,
    }
}

fn backtrace_of(error: &wasmtime::Error) -> Option<String> {
    error
        .downcast_ref::<WasmBacktrace>()
        .map(|backtrace| backtrace.to_string())
        .filter(|text| !text.trim().is_empty())
}

/// Whether a host call failed because the guest holds as many resources as its
/// table allows.
fn handle_table_full(error: &wasmtime::Error) -> bool {
    use wasmtime::component::ResourceTableError;
    error.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<ResourceTableError>(),
            Some(ResourceTableError::Full)
        )
    })
}

/// Puts what the guest wrote to stderr into a trap outcome: it usually says why.
fn attach_stderr(outcome: Outcome, host: &HostContext) -> Outcome {
    match outcome {
        Outcome::Trap {
            message,
            backtrace,
            stderr: None,
        } => {
            let (text, _) = host.stderr.contents();
            let text = text.trim();
            Outcome::Trap {
                message,
                backtrace,
                stderr: (!text.is_empty()).then(|| text.to_string()),
            }
        }
        other => other,
    }
}

/// Writes captured stdout and stderr into the execution's log, one record per stream.
/// They are not counted against the log limit: the capture is already bounded.
fn flush_stdio(host: &HostContext) {
    for (stream, level) in [("stdout", LogLevel::Info), ("stderr", LogLevel::Warn)] {
        let captured = if stream == "stdout" {
            &host.stdout
        } else {
            &host.stderr
        };
        let (text, dropped) = captured.contents();
        if text.trim().is_empty() {
            continue;
        }
        let fields = serde_json::json!({ "stream": stream, "droppedBytes": dropped }).to_string();
        host.caps.log.write(crate::capabilities::log::LogRecord {
            execution_id: host.context.execution_id.clone(),
            step: host.context.step.clone(),
            level,
            message: text.trim_end().to_string(),
            fields: Some(fields),
            timestamp_ms: crate::capabilities::log::now_ms(),
        });
    }
}

//! Outbound HTTP: the tenant's allow-list by name ([`EgressPolicy`], `policy.rs`), the
//! operator's policy by address with the outbound caps ([`NetworkPolicy`],
//! `address.rs`), the connection the host opens itself (`connect.rs`), and the
//! `wasi:http` hook that ties them together for one execution (`EgressHooks`), and
//! [`fetch`] for the requests the host sends itself on a tenant's behalf.
//!
//! Deny by default, in this order: the name must be on the allow-list; the execution
//! and its tenant must be under their in-flight caps; every address the name resolves
//! to is checked and only a permitted one is connected to. The host never follows
//! redirects for a guest (wasi-http hands the 3xx response back), so a redirect is a
//! new request, checked again. Refusals are logged once or a few times per
//! execution, then only counted (`RefusalLog`).

mod address;
mod connect;
mod fetch;
mod policy;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttpHooks};

pub use self::address::{
    CidrError, NetworkPolicy, OutboundLimits, ResolveFuture, Resolver, StaticResolver,
    SystemResolver, is_special_purpose,
};
pub use self::fetch::{FetchError, fetch};
pub use self::policy::{EgressPolicy, EgressRuleError, MAX_RULES};

use self::address::TenantSlot;
use self::connect::{Refused, Target};
use super::HostContext;
use super::log::{LogBudget, LogLevel, LogRecord, LogSink, now_ms};

/// Refusals written to the log one by one in each execution; later ones are counted
/// and summed up in one line when the execution ends.
pub const REFUSALS_LOGGED: u32 = 3;

/// Longest destination quoted in a refusal line.
const QUOTED_TARGET_CHARS: usize = 200;

/// The `wasi:http` hooks of one execution: checks the allow-list, the caps and the
/// destination's addresses, and tells the execution's log why a request was refused.
pub(crate) struct EgressHooks {
    pub(crate) policy: Arc<EgressPolicy>,
    pub(crate) network: Arc<NetworkPolicy>,
    pub(crate) tenant: String,
    /// Requests of this execution in flight.
    pub(crate) in_flight: Arc<AtomicUsize>,
    pub(crate) refusals: Arc<RefusalLog>,
}

impl EgressHooks {
    pub(crate) fn new(
        policy: Arc<EgressPolicy>,
        network: Arc<NetworkPolicy>,
        log: Arc<dyn LogSink>,
        context: &crate::types::ExecutionContext,
        log_budget: LogBudget,
    ) -> Self {
        EgressHooks {
            policy,
            network,
            tenant: context.tenant_id.clone(),
            in_flight: Arc::default(),
            refusals: Arc::new(RefusalLog {
                sink: log,
                execution_id: context.execution_id.clone(),
                step: context.step.clone(),
                budget: log_budget,
                state: Mutex::default(),
            }),
        }
    }

    /// Takes a slot of the execution's and of the tenant's cap.
    fn acquire(&self) -> Result<Permit, &'static str> {
        let limit = self.network.limits().per_execution;
        let taken = self
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |count| {
                (count < limit).then_some(count + 1)
            });
        if taken.is_err() {
            return Err("the execution has the most outbound requests in flight it may have");
        }
        let execution = ExecutionSlot(Arc::clone(&self.in_flight));
        let tenant = self
            .network
            .acquire_tenant(&self.tenant)
            .ok_or("the tenant has the most outbound requests in flight it may have")?;
        Ok(Permit {
            _execution: execution,
            _tenant: tenant,
        })
    }
}

/// One request's slot in its execution's cap; given back on drop.
struct ExecutionSlot(Arc<AtomicUsize>);

impl Drop for ExecutionSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The slots one request holds from send until its connection is done or dropped.
struct Permit {
    _execution: ExecutionSlot,
    _tenant: TenantSlot,
}

/// Refusal lines of one execution: the first [`REFUSALS_LOGGED`] are written as they
/// happen, the rest counted, and [`HostContext::finish_egress`] writes one summary.
/// Every line counts against the execution's log budget; none is written past it.
pub(crate) struct RefusalLog {
    sink: Arc<dyn LogSink>,
    execution_id: String,
    step: Option<String>,
    /// The execution's log budget, shared with the guest's own `log.write` calls.
    budget: LogBudget,
    state: Mutex<RefusalState>,
}

#[derive(Default)]
struct RefusalState {
    written: u32,
    suppressed: u64,
    /// The execution has ended: nothing more is written.
    closed: bool,
}

impl RefusalLog {
    fn note(&self, message: String) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.closed || state.written >= REFUSALS_LOGGED {
            state.suppressed += 1;
            return;
        }
        // Past the budget the line is only counted; the guest's next log write then
        // ends the execution with `log-limit`.
        if self.budget.charge(&message, None).is_err() {
            // Stop trying: every refused attempt would be charged again.
            state.written = REFUSALS_LOGGED;
            state.suppressed += 1;
            return;
        }
        state.written += 1;
        drop(state);
        self.write(message);
    }

    fn write(&self, message: String) {
        self.sink.write(LogRecord {
            execution_id: self.execution_id.clone(),
            step: self.step.clone(),
            level: LogLevel::Warn,
            message,
            fields: None,
            timestamp_ms: now_ms(),
        });
    }

    /// Writes the summary of the refusals not logged one by one, if the log budget
    /// has room, and closes the log.
    fn finish(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.closed {
            return;
        }
        state.closed = true;
        if state.suppressed > 0 {
            let message = format!(
                "{} more outbound requests denied (only the first {REFUSALS_LOGGED} are logged)",
                state.suppressed
            );
            if self.budget.charge(&message, None).is_ok() {
                drop(state);
                self.write(message);
            }
        }
    }
}

impl HostContext {
    /// Ends the execution's outbound HTTP bookkeeping: writes the summary of refused
    /// requests (charged to the log budget like every refusal line). Called once,
    /// when the guest's call has returned.
    pub(crate) fn finish_egress(&mut self) {
        self.egress.refusals.finish();
    }
}

/// `scheme://host[:port]` for a log line, cut to a sane length.
fn describe(scheme: &str, host: &str, port: Option<u16>) -> String {
    let target = match port {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    };
    let mut quoted: String = target
        .chars()
        .take(QUOTED_TARGET_CHARS)
        .flat_map(char::escape_default)
        .collect();
    if target.chars().count() > QUOTED_TARGET_CHARS {
        quoted.push('…');
    }
    quoted
}

type SendFuture = Box<
    dyn Future<
            Output = wasmtime_wasi_http::Result<(
                http::Response<WasiBody>,
                Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
            )>,
        > + Send,
>;

impl WasiHttpHooks for EgressHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> SendFuture {
        let uri = request.uri();
        let scheme = uri.scheme_str().unwrap_or("https").to_ascii_lowercase();
        let host = uri.host().unwrap_or("").to_ascii_lowercase();
        let port = uri.port_u16();
        let target = describe(&scheme, &host, port);
        if !self.policy.allows(&scheme, &host, port) {
            self.refusals.note(format!(
                "outbound HTTP request to {target} denied: the host is not on the instance's allow-list"
            ));
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        let permit = match self.acquire() {
            Ok(permit) => permit,
            Err(why) => {
                self.refusals
                    .note(format!("outbound HTTP request to {target} refused: {why}"));
                return Box::new(async { Err(wasmtime_wasi_http::Error::ConnectionLimitReached) });
            }
        };
        let tls = scheme == "https";
        let target_host = host
            .strip_prefix('[')
            .and_then(|inner| inner.strip_suffix(']'))
            .unwrap_or(&host)
            .to_string();
        let destination = Target {
            host: target_host,
            port: port.unwrap_or(if tls { 443 } else { 80 }),
            tls,
        };
        let refusals = Arc::clone(&self.refusals);
        let on_refused = move |refused: Refused| {
            match refused {
            Refused::Address(address) => refusals.note(format!(
                "outbound HTTP request to {target} denied: it resolves to {address}, a private or special-purpose address the operator has not opened"
            )),
        }
        };
        Box::new(connect::send(
            request,
            options,
            destination,
            Arc::clone(&self.network),
            permit,
            on_refused,
        ))
    }

    // An outgoing body buffers at most (chunks + 1) x chunk size until it is sent;
    // `http_memory` charges that much per body, so both stay small (wasi-http's
    // defaults hold 2 MiB per body).
    fn p2_outgoing_body_buffer_chunks(&mut self) -> usize {
        super::http_memory::OUTGOING_BODY_BUFFER_CHUNKS
    }

    fn p2_outgoing_body_chunk_size(&mut self) -> usize {
        super::http_memory::OUTGOING_BODY_CHUNK_BYTES
    }
}

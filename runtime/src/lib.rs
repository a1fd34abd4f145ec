//! `sluice-runtime`: the embedding library of Sluice.
//!
//! It runs untrusted WebAssembly components of the `sluice:flow@0.1.0` WIT package
//! (`wit/` at the repository root), each execution in a fresh, isolated instance with
//! its own fuel, memory, time, output and log budgets, and gives the guest state,
//! connections, config, context, logging and outbound HTTP only through host
//! functions backed by the traits in [`capabilities`].
//!
//! The crate knows nothing of HTTP servers, tenants' API keys or SQL: hosts plug those
//! in through the capability traits.
//!
//! # Unsafe code
//!
//! `unsafe` is used for the deserialization of precompiled artifacts in
//! [`artifacts`], which wasmtime marks unsafe because arbitrary bytes would run as
//! native code, and in [`compile`] for the compile worker's process limits
//! (`setrlimit` between fork and exec) and its peak memory (`getrusage`). Each use
//! carries a `// SAFETY:` comment; see `docs/unsafe.md` for the policy.

pub mod artifacts;
mod bindings;
pub mod capabilities;
pub mod compile;
pub mod engine;
pub mod error;
mod fair_share;
pub mod flow;
#[cfg(feature = "guest-build")]
pub mod guest_build;
#[cfg(feature = "harness")]
pub mod harness;
pub mod limits;
pub mod outcome;
mod runtime;
mod sandbox;
pub mod types;
mod validate;

pub use artifacts::{ContentHash, LoadOrigin, LoadedComponent};
pub use capabilities::Capabilities;
pub use capabilities::config::{ConfigSource, StaticConfig};
pub use capabilities::connections::{
    Connection, ConnectionError, ConnectionProvider, OAuthToken, StaticConnections,
};
pub use capabilities::http::{
    CidrError, EgressPolicy, EgressRuleError, FetchError, NetworkPolicy, OutboundLimits,
    REFUSALS_LOGGED, Resolver, StaticResolver, SystemResolver, fetch,
};
pub use capabilities::invoke::Invoker;
pub use capabilities::log::{
    LOG_RECORD_OVERHEAD_BYTES, LogLevel, LogRecord, LogSink, MemoryLogSink, TracingLogSink,
};
pub use capabilities::state::{
    MemoryStateStore, StateDelta, StateNamespace, StateQuota, StateStore, StateStoreError,
    StateUsage, canonical_json, entry_size,
};
pub use compile::{CompileLimitKind, CompileLimits, CompileStats, Compiler, WorkerCommand};
pub use engine::{AllocatorChoice, AllocatorKind, OptLevel, RuntimeConfig};
pub use error::{ExecuteError, LoadError, RuntimeError};
pub use limits::Limits;
pub use outcome::{Call, ExecutionReport, Metering, Outcome, Returned};
pub use runtime::Runtime;
pub use types::{
    Data, ExecutionContext, GuestError, GuestErrorKind, HttpRequest, HttpResponse, MAX_JSON_DEPTH,
    Output, TriggerOutcome,
};
pub use validate::{World, check_component};

//! Errors of the embedding API: building a runtime, loading a component, and starting
//! an execution. What happens *inside* an execution is an [`Outcome`](crate::Outcome),
//! not an error.

use std::path::PathBuf;
use std::time::Duration;

use crate::World;
use crate::artifacts::ContentHash;
use crate::compile::CompileLimitKind;

/// The runtime itself could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// wasmtime refused the engine configuration.
    #[error("cannot create the wasmtime engine: {0}")]
    Engine(String),
    /// The artifact cache directory cannot be created or used.
    #[error("artifact cache directory {path}: {source}")]
    CacheDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Host functions could not be linked (a bug in Sluice, not in a guest).
    #[error("cannot link host functions: {0}")]
    Linker(String),
}

/// A component was refused at load. Each variant names the cause so a tenant can fix it.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("component is {size} bytes; the limit is {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("not a WebAssembly binary: {0}")]
    NotWasm(String),
    #[error(
        "this is a core WebAssembly module, not a component; build the guest for \
         wasm32-wasip2 (or wrap it with `wasm-tools component new`)"
    )]
    CoreModule,
    #[error("malformed component: {0}")]
    Malformed(String),
    #[error("component imports `{import}`, which Sluice does not provide{hint}")]
    ForbiddenImport { import: String, hint: String },
    #[error(
        "component does not implement a Sluice world: it exports {exports}, but must export \
         `sluice:flow/connector@0.1.0` (world `component`) or `sluice:flow/code-flow@0.1.0` \
         (world `flow`)"
    )]
    NotSluice { exports: String },
    #[error("component does not match the `{world}` world of sluice:flow@0.1.0: {message}")]
    WorldMismatch { world: World, message: String },
    #[error("compilation failed: {0}")]
    Compile(String),
    /// Compiling the component took more than a compile budget (see
    /// [`CompileLimits`](crate::compile::CompileLimits)); the component is refused.
    #[error(
        "compilation exceeded its {0}; the component is refused (simplify its largest \
         functions, or split them)"
    )]
    CompileLimit(CompileLimitKind),
    /// The compile worker could not run (a host problem, not the component's).
    #[error("compile worker: {0}")]
    CompileWorker(String),
    #[error("artifact cache: {0}")]
    Cache(String),
    #[error("no compiled artifact for component {0} in the cache; upload its bytes again")]
    NotCached(ContentHash),
}

/// An execution could not start. Once started, every ending is an [`Outcome`](crate::Outcome).
#[derive(Debug, thiserror::Error)]
pub enum ExecuteError {
    #[error("busy: all {capacity} execution slots stayed taken for {waited:?}; retry later")]
    Busy { capacity: u32, waited: Duration },
    #[error("`{call}` is not an export of a component of world `{world}`")]
    WrongWorld { call: &'static str, world: World },
    #[error("invalid limits: {0}")]
    InvalidLimits(String),
    #[error("invalid call: {0}")]
    InvalidCall(String),
    /// The host could not create the instance (out of memory, pool exhausted); the
    /// guest did not run. Retrying later may succeed.
    #[error("cannot instantiate the component: {0}")]
    Instantiate(String),
}

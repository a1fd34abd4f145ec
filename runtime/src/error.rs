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
        /// The directory.
        path: PathBuf,
        /// Why it cannot be used.
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
    /// The bytes are over [`RuntimeConfig::max_component_bytes`](crate::RuntimeConfig).
    #[error("component is {size} bytes; the limit is {limit} bytes")]
    TooLarge {
        /// Bytes given.
        size: usize,
        /// Bytes allowed.
        limit: usize,
    },
    /// The bytes are not WebAssembly at all (no `\0asm` header).
    #[error("not a WebAssembly binary: {0}")]
    NotWasm(String),
    /// A core module was given where a component is needed.
    #[error(
        "this is a core WebAssembly module, not a component; build the guest for \
         wasm32-wasip2 (or wrap it with `wasm-tools component new`)"
    )]
    CoreModule,
    /// The component does not validate.
    #[error("malformed component: {0}")]
    Malformed(String),
    /// The component imports an interface outside Sluice's guest surface.
    #[error("component imports `{import}`, which Sluice does not provide{hint}")]
    ForbiddenImport {
        /// The import's name.
        import: String,
        /// What to use instead, when there is something (starts with "; ").
        hint: String,
    },
    /// The component exports neither of Sluice's worlds.
    #[error(
        "component does not implement a Sluice world: it exports {exports}, but must export \
         `sluice:flow/connector@0.1.0` (world `component`) or `sluice:flow/code-flow@0.1.0` \
         (world `flow`)"
    )]
    NotSluice {
        /// What it exports instead.
        exports: String,
    },
    /// The component exports a Sluice world's interface with the wrong types.
    #[error("component does not match the `{world}` world of sluice:flow@0.1.0: {message}")]
    WorldMismatch {
        /// The world it claims.
        world: World,
        /// wasmtime's description of the mismatch.
        message: String,
    },
    /// Cranelift refused the component.
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
    /// The artifact cache could not be read or written.
    #[error("artifact cache: {0}")]
    Cache(String),
    /// [`Runtime::load_cached`](crate::Runtime::load_cached) found no artifact.
    #[error("no compiled artifact for component {0} in the cache; upload its bytes again")]
    NotCached(ContentHash),
}

/// An execution could not start. Once started, every ending is an [`Outcome`](crate::Outcome).
#[derive(Debug, thiserror::Error)]
pub enum ExecuteError {
    /// Every execution slot stayed taken for
    /// [`RuntimeConfig::busy_wait`](crate::RuntimeConfig::busy_wait).
    #[error("busy: all {capacity} execution slots stayed taken for {waited:?}; retry later")]
    Busy {
        /// The slots (`RuntimeConfig::max_concurrency`).
        capacity: u32,
        /// How long this call waited.
        waited: Duration,
    },
    /// The call is an export of the other world (an action of a code-native flow).
    #[error("`{call}` is not an export of a component of world `{world}`")]
    WrongWorld {
        /// The export called.
        call: &'static str,
        /// The component's world.
        world: World,
    },
    /// The limits are invalid or above the runtime's ceiling.
    #[error("invalid limits: {0}")]
    InvalidLimits(String),
    /// An input of the call is not JSON.
    #[error("invalid call: {0}")]
    InvalidCall(String),
    /// The host could not create the instance (out of memory, pool exhausted); the
    /// guest did not run. Retrying later may succeed.
    #[error("cannot instantiate the component: {0}")]
    Instantiate(String),
}

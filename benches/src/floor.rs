//! The raw-wasmtime floor: the least a host must do to run one `run-action` of a
//! `sluice:flow` component in a fresh instance. Pooling allocator, one `Linker`, one
//! `InstancePre`; per execution a new `Store` holding only what WASI needs, then
//! instantiate, call and drop. No fuel, no epochs, no limiter, no capabilities, no
//! tracing span, no report: whatever Sluice spends above this is its own overhead.

use std::time::{Duration, Instant};

use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "sluice:flow/component",
        exports: { default: async },
        with: {
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
            "wasi:random": wasmtime_wasi::p2::bindings::random,
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        },
    });
}

use bindings::ComponentPre;
use bindings::sluice::flow::types::{Data, ExecutionContext};
use bindings::sluice::flow::{config, connections, context, log, state, types};

/// The store data: WASI contexts and the resource table, nothing else.
struct Host {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
}

impl Host {
    fn new() -> Self {
        Host {
            wasi: WasiCtx::builder().build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
        }
    }
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for Host {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            hooks: Default::default(),
            table: &mut self.table,
            ctx: &mut self.http,
        }
    }
}

impl types::Host for Host {}

impl log::Host for Host {
    fn write(&mut self, _level: log::Level, _message: String, _fields: Option<String>) {}
}

impl state::Host for Host {
    fn get(
        &mut self,
        _scope: state::Scope,
        _key: String,
    ) -> Result<Option<String>, state::StateError> {
        Ok(None)
    }

    fn set(
        &mut self,
        _scope: state::Scope,
        _key: String,
        _value: String,
    ) -> Result<(), state::StateError> {
        Ok(())
    }

    fn delete(&mut self, _scope: state::Scope, _key: String) -> Result<bool, state::StateError> {
        Ok(false)
    }

    fn compare_and_swap(
        &mut self,
        _scope: state::Scope,
        _key: String,
        _expected: Option<String>,
        _new: Option<String>,
    ) -> Result<bool, state::StateError> {
        Ok(false)
    }
}

impl connections::Host for Host {
    fn get(
        &mut self,
        key: String,
    ) -> Result<connections::Connection, connections::ConnectionError> {
        Err(connections::ConnectionError::NotFound(key))
    }
}

impl config::Host for Host {
    fn get(&mut self, _key: String) -> Option<String> {
        None
    }

    fn all(&mut self) -> Vec<(String, String)> {
        Vec::new()
    }
}

impl context::Host for Host {
    fn current(&mut self) -> ExecutionContext {
        execution_context()
    }
}

fn execution_context() -> ExecutionContext {
    ExecutionContext {
        execution_id: String::new(),
        tenant_id: String::new(),
        customer_id: None,
        customer_external_id: None,
        integration_id: String::new(),
        instance_id: String::new(),
        flow_name: String::new(),
        step: None,
        attempt: 1,
        started_at_ms: 0,
        webhook_urls: Vec::new(),
    }
}

/// Time spent in each phase of one floor execution.
#[derive(Debug, Clone, Copy)]
pub struct Phases {
    pub store: Duration,
    pub instantiate: Duration,
    pub call: Duration,
    pub drop: Duration,
}

impl Phases {
    pub fn total(&self) -> Duration {
        self.store + self.instantiate + self.call + self.drop
    }
}

/// Engine, linker and `InstancePre`, built once, and the arguments of the call.
pub struct Floor {
    engine: Engine,
    pre: ComponentPre<Host>,
    context: ExecutionContext,
    action: String,
    input: String,
}

impl Floor {
    /// Compiles `bytes` on a new pooling engine (default `Config` and pool otherwise)
    /// and pre-instantiates it against a linker of the WASI interfaces and trivial
    /// `sluice:flow` host interfaces. Each execution calls `run-action(action, input)`.
    pub fn new(bytes: &[u8], action: &str, input: &str) -> wasmtime::Result<Self> {
        Self::with_pool(bytes, action, input, PoolingAllocationConfig::default())
    }

    /// As [`Floor::new`] with another pool configuration (for experiments such as
    /// `decommit_batch_size`; the benchmarks' floor uses the default).
    pub fn with_pool(
        bytes: &[u8],
        action: &str,
        input: &str,
        pool: PoolingAllocationConfig,
    ) -> wasmtime::Result<Self> {
        let mut config = Config::new();
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config)?;
        let component = Component::new(&engine, bytes)?;

        let mut linker = Linker::<Host>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        types::add_to_linker::<Host, HasSelf<Host>>(&mut linker, |host| host)?;
        log::add_to_linker::<Host, HasSelf<Host>>(&mut linker, |host| host)?;
        state::add_to_linker::<Host, HasSelf<Host>>(&mut linker, |host| host)?;
        connections::add_to_linker::<Host, HasSelf<Host>>(&mut linker, |host| host)?;
        config::add_to_linker::<Host, HasSelf<Host>>(&mut linker, |host| host)?;
        context::add_to_linker::<Host, HasSelf<Host>>(&mut linker, |host| host)?;
        let pre = ComponentPre::new(linker.instantiate_pre(&component)?)?;
        Ok(Floor {
            engine,
            pre,
            context: execution_context(),
            action: action.to_string(),
            input: input.to_string(),
        })
    }

    /// One execution: new store, instantiate, `run-action(action, input)`, drop.
    /// Returns the JSON the action produced and the time of each phase.
    pub async fn run(&self) -> wasmtime::Result<(String, Phases)> {
        let started = Instant::now();
        let mut store = Store::new(&self.engine, Host::new());
        let created = Instant::now();
        let instance = self.pre.instantiate_async(&mut store).await?;
        let instantiated = Instant::now();
        let result = instance
            .sluice_flow_connector()
            .call_run_action(&mut store, &self.context, &self.action, &self.input)
            .await?;
        let called = Instant::now();
        drop(store);
        let dropped = Instant::now();
        let phases = Phases {
            store: created - started,
            instantiate: instantiated - created,
            call: called - instantiated,
            drop: dropped - called,
        };
        match result {
            Ok(output) => match output.data {
                Data::Json(text) => Ok((text, phases)),
                Data::Bytes(_) => Err(wasmtime::Error::msg("the action returned bytes, not JSON")),
            },
            Err(error) => Err(wasmtime::Error::msg(format!(
                "the action failed: {error:?}"
            ))),
        }
    }
}

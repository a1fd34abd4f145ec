//! `memory-bomb`: a hostile guest that allocates 1 MiB chunks forever and keeps them
//! all alive, writing into every page so the memory is really committed, not merely
//! reserved. It tests the host's per-instance memory limit.
//!
//! Everything but `run-action` fails with `fatal("not supported")`.

use sluice_sdk::component::exports::sluice::flow::connector::Guest;
use sluice_sdk::component::sluice::flow::types::{
    Error, ExecutionContext, HttpRequest, Output, TriggerOutcome,
};
use std::hint::black_box;

struct MemoryBomb;

sluice_sdk::component::export_component!(MemoryBomb);

impl Guest for MemoryBomb {
    fn manifest() -> String {
        r#"{"key":"memory-bomb","version":"0.1.0","display":{"label":"Memory bomb","description":"Allocates memory until the host stops it."},"actions":{"run":{"display":{"label":"Run","description":"Allocates memory until the host stops it."},"inputs":{"type":"object"}}}}"#.to_string()
    }

    fn run_action(
        _ctx: ExecutionContext,
        _action: String,
        _input: String,
    ) -> Result<Output, Error> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            // Fresh `memory.grow` pages read as zero without the host committing them;
            // writing one byte per host page forces every page to be backed.
            let mut chunk = vec![0u8; CHUNK];
            for page in chunk.chunks_mut(HOST_PAGE) {
                page[0] = 0xA5;
            }
            // Keeping every chunk reachable (and opaque to the optimiser) means the
            // allocations can be neither freed nor elided.
            hoard.push(black_box(chunk));
            black_box(&hoard);
        }
    }

    fn run_trigger(
        _ctx: ExecutionContext,
        _trigger: String,
        _request: HttpRequest,
        _inputs: String,
    ) -> Result<TriggerOutcome, Error> {
        Err(unsupported())
    }

    fn run_data_source(
        _ctx: ExecutionContext,
        _name: String,
        _input: String,
    ) -> Result<String, Error> {
        Err(unsupported())
    }

    fn on_instance_deploy(
        _ctx: ExecutionContext,
        _trigger: String,
        _inputs: String,
    ) -> Result<(), Error> {
        Err(unsupported())
    }

    fn on_instance_remove(
        _ctx: ExecutionContext,
        _trigger: String,
        _inputs: String,
    ) -> Result<(), Error> {
        Err(unsupported())
    }
}

fn unsupported() -> Error {
    Error::Fatal("not supported".to_string())
}

const CHUNK: usize = 1 << 20;
/// The smallest page size a host is likely to use; wasm pages (64 KiB) are larger,
/// so this touches every host page whatever the host's page size.
const HOST_PAGE: usize = 4096;

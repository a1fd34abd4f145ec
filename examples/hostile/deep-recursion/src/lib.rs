//! `deep-recursion`: a hostile guest that recurses without bound. It tests that a
//! stack overflow in a guest becomes a trap the host reports, not a crash of the host.
//!
//! Everything but `run-action` fails with `fatal("not supported")`.

use sluice_sdk::component::exports::sluice::flow::connector::Guest;
use sluice_sdk::component::sluice::flow::types::{
    Error, ExecutionContext, HttpRequest, Output, TriggerOutcome,
};
use std::hint::black_box;

struct DeepRecursion;

sluice_sdk::component::export_component!(DeepRecursion);

impl Guest for DeepRecursion {
    fn manifest() -> String {
        r#"{"key":"deep-recursion","version":"0.1.0","display":{"label":"Deep recursion","description":"Recurses until the stack overflows."},"actions":{"run":{"display":{"label":"Run","description":"Recurses until the stack overflows."},"inputs":{"type":"object"}}}}"#.to_string()
    }

    fn run_action(
        _ctx: ExecutionContext,
        _action: String,
        _input: String,
    ) -> Result<Output, Error> {
        let depth = descend(0);
        // Unreachable in practice; it only gives `descend` a use.
        Err(Error::Fatal(format!("recursion ended at depth {depth}")))
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

/// Each frame keeps a local array alive across the recursive call and combines it
/// with the callee's result, so the call is not in tail position and cannot be turned
/// into a loop. The array is small on purpose (a frame takes 32 bytes of the 1 MiB
/// shadow stack in linear memory), so with a host wasm stack limit below about 1 MiB
/// the wasm call stack runs out first and the host sees a stack-overflow trap; past
/// the shadow stack's end the guest would trap on an out-of-bounds access instead.
#[inline(never)]
fn descend(depth: u64) -> u64 {
    let frame = [depth; 2];
    // Taking the array's address forces it into memory, so every frame really uses it.
    black_box(&frame);
    // Never true at run time, but the compiler cannot know that; without an exit the
    // `unconditional_recursion` lint would fire.
    if black_box(depth) == u64::MAX {
        return 0;
    }
    let below = descend(depth + 1);
    black_box(below.wrapping_add(frame[(depth % 2) as usize]))
}

//! `deep-recursion`: a hostile guest that recurses without bound. It tests that a
//! stack overflow in a guest becomes a trap the host reports, not a crash of the host.

use hostile_support::{Error, Output};
use std::hint::black_box;

hostile_support::hostile_connector!(
    key: "deep-recursion",
    description: "Recurses until the stack runs out.",
    run: run,
);

fn run(_input: String) -> Result<Output, Error> {
    let depth = descend(0);
    // Unreachable in practice; it only gives `descend` a use.
    Err(Error::Fatal(format!("recursion ended at depth {depth}")))
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

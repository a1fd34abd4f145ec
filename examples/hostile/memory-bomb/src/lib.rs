//! `memory-bomb`: a hostile guest that allocates 1 MiB chunks forever and keeps them
//! all alive, writing into every page so the memory is really committed, not merely
//! reserved. It tests the host's per-instance memory limit.

use hostile_support::{Error, Output};
use std::hint::black_box;

hostile_support::hostile_connector!(
    key: "memory-bomb",
    description: "Allocates memory until the host stops it.",
    run: run,
);

const CHUNK: usize = 1 << 20;
/// The host's page size: touching one byte per page commits the whole page.
const HOST_PAGE: usize = 4096;

fn run(_input: String) -> Result<Output, Error> {
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

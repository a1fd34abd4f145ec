//! The host-memory charges of `wasi:http` resources are estimates (a fixed 1 KiB per
//! live handle, 130 KiB per taken outgoing body, what fields hold). This measures what
//! the host really allocates for them, with a counting global allocator, and checks
//! that the charge covers it: a guest cannot hold more host memory than its budget
//! says.
//!
//! Each measurement is the difference between two runs of a hostile guest that leak
//! different numbers of resources, so the store's and instance's own allocations
//! cancel out; linear memories come from the pool's mappings, not the heap.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use sluice_runtime::{Limits, Runtime};

/// The system allocator, counting the bytes live and the peak since the last reset.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let live = LIVE.fetch_add(bytes, Ordering::SeqCst) + bytes;
    PEAK.fetch_max(live, Ordering::SeqCst);
}

// SAFETY: every method forwards to `System` with the caller's own arguments, which
// meet `GlobalAlloc`'s contract because the caller's do; the counters are plain
// atomics and never affect what is returned.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is (see above).
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            grew(layout.size());
        }
        pointer
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is (see above).
        let pointer = unsafe { System.alloc_zeroed(layout) };
        if !pointer.is_null() {
            grew(layout.size());
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is (see above).
        unsafe { System.dealloc(pointer, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::SeqCst);
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is (see above).
        let moved = unsafe { System.realloc(pointer, layout, new_size) };
        if !moved.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::SeqCst);
            grew(new_size);
        }
        moved
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// One measurement at a time: the counters are the whole process's.
static MEASURING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Budget far above what the runs hold: they end by themselves.
const BUDGET: u64 = 256 << 20;

/// (peak heap growth during the run, peak memory charged) of one run of `guest`.
async fn measure(runtime: &Runtime, guest: &str, input: &str) -> (i64, i64) {
    let component = load(runtime, guest);
    let (caps, _) = capabilities();
    let limits = Limits::default().memory_bytes(BUDGET);
    let before = LIVE.load(Ordering::SeqCst);
    PEAK.store(before, Ordering::SeqCst);
    let report = run(runtime, &component, action("run", input), &caps, &limits).await;
    let heap = PEAK.load(Ordering::SeqCst) - before;
    assert!(
        matches!(report.outcome, sluice_runtime::Outcome::Completed { .. }),
        "{guest} {input}: {:?}",
        report.outcome
    );
    (heap as i64, report.metering.peak_memory_bytes as i64)
}

/// Per resource leaked between a run leaking `few` and one leaking `many`: (heap,
/// charged).
async fn per_resource(
    guest: &str,
    input: impl Fn(usize) -> String,
    few: usize,
    many: usize,
) -> (f64, f64) {
    let _alone = MEASURING.lock().await;
    let runtime = runtime(2);
    // A first run loads and warms everything that is allocated once.
    measure(&runtime, guest, &input(few)).await;
    let (heap_few, charged_few) = measure(&runtime, guest, &input(few)).await;
    let (heap_many, charged_many) = measure(&runtime, guest, &input(many)).await;
    let leaked = (many - few) as f64;
    let heap = (heap_many - heap_few) as f64 / leaked;
    let charged = (charged_many - charged_few) as f64 / leaked;
    println!("{guest}: per resource, heap {heap:.0} bytes, charged {charged:.0} bytes");
    (heap, charged)
}

#[tokio::test(flavor = "current_thread")]
async fn the_charge_for_a_fields_handle_covers_its_heap() {
    // Fields with four 256-byte values: 1 KiB of values each, so `mib: N` leaks
    // N x 1024 of them, under the handle cap.
    let input = |fields: usize| format!(r#"{{"mib": {}, "valueBytes": 256}}"#, fields / 1024);
    let (heap, charged) = per_resource("fields-bomb", input, 1024, 3072).await;
    assert!(heap > 0.0, "nothing measured: {heap}");
    assert!(
        charged >= heap,
        "a fields handle holds {heap:.0} heap bytes but is charged {charged:.0}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn the_charge_for_an_outgoing_body_covers_its_heap() {
    // Each leaked request buffers what its body accepts (two 64 KiB chunks): `mib: N`
    // leaks N x 8 requests.
    let input = |requests: usize| format!(r#"{{"mib": {}}}"#, requests / 8);
    let (heap, charged) = per_resource("body-bomb", input, 32, 256).await;
    assert!(heap > 0.0, "nothing measured: {heap}");
    assert!(
        charged >= heap,
        "a leaked request holds {heap:.0} heap bytes but is charged {charged:.0}"
    );
}

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

use std::sync::Arc;

use common::*;
use sluice_runtime::{Capabilities, EgressPolicy, Limits, NetworkPolicy, Runtime};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

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
async fn measure(runtime: &Runtime, caps: &Capabilities, guest: &str, input: &str) -> (i64, i64) {
    let component = load(runtime, guest);
    let limits = Limits::default().memory_bytes(BUDGET);
    let before = LIVE.load(Ordering::SeqCst);
    PEAK.store(before, Ordering::SeqCst);
    let report = run(runtime, &component, action("run", input), caps, &limits).await;
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
    caps: &Capabilities,
    guest: &str,
    input: impl Fn(usize) -> String,
    few: usize,
    many: usize,
) -> (f64, f64) {
    let _alone = MEASURING.lock().await;
    let runtime = runtime(2);
    // A first run loads and warms everything that is allocated once.
    measure(&runtime, caps, guest, &input(few)).await;
    let (heap_few, charged_few) = measure(&runtime, caps, guest, &input(few)).await;
    let (heap_many, charged_many) = measure(&runtime, caps, guest, &input(many)).await;
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
    let (caps, _) = capabilities();
    let (heap, charged) = per_resource(&caps, "fields-bomb", input, 1024, 3072).await;
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
    let (caps, _) = capabilities();
    let (heap, charged) = per_resource(&caps, "body-bomb", input, 32, 256).await;
    assert!(heap > 0.0, "nothing measured: {heap}");
    assert!(
        charged >= heap,
        "a leaked request holds {heap:.0} heap bytes but is charged {charged:.0}"
    );
}

/// Answers every request with a head and then as much of an 8 MiB body as the client
/// takes, on a connection it keeps open.
async fn serve_big_bodies() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut chunk = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(read) => head.extend_from_slice(&chunk[..read]),
                    }
                }
                let size = 8usize << 20;
                let reply = format!("HTTP/1.1 200 OK\r\ncontent-length: {size}\r\n\r\n");
                if socket.write_all(reply.as_bytes()).await.is_err() {
                    return;
                }
                let block = vec![b'r'; 64 << 10];
                for _ in 0..size / block.len() {
                    if socket.write_all(&block).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

#[tokio::test(flavor = "current_thread")]
async fn the_charge_for_an_unread_response_covers_its_heap() {
    let port = serve_big_bodies().await;
    let (mut caps, _) = capabilities();
    caps.egress =
        Arc::new(EgressPolicy::parse([format!("http://127.0.0.1:{port}")]).expect("egress rule"));
    // The server is on loopback, which only the operator can open.
    caps.network = Arc::new(NetworkPolicy::new().allow_loopback());
    let input = |responses: usize| {
        format!(r#"{{"leakFrom": "127.0.0.1:{port}", "responses": {responses}}}"#)
    };
    // Under the 16 requests an execution may have in flight: each leaked one stays so.
    let (heap, charged) = per_resource(&caps, "body-bomb", input, 2, 14).await;
    assert!(heap > 0.0, "nothing measured: {heap}");
    assert!(
        charged >= heap,
        "an unread response holds {heap:.0} heap bytes but is charged {charged:.0}"
    );
}

//! Where the address space for the pooling allocator cannot be reserved, the runtime
//! falls back to on-demand allocation and still runs guests; asked for pooling
//! explicitly, it fails with a clear error.
//!
//! The address-space limit is real: the test re-runs this test binary as a child
//! process under `prlimit --as`, since a limit cannot be lifted once set.

mod common;

use std::process::Command;

use common::*;
use sluice_runtime::{AllocatorChoice, AllocatorKind, Runtime, RuntimeConfig};

const CHILD_ENV: &str = "SLUICE_ALLOCATOR_TEST_CHILD";
/// Far below the pool's reservation (terabytes for 1,000 slots), enough for a few
/// on-demand instances.
const ADDRESS_SPACE_BYTES: u64 = 48 << 30;

#[test]
fn falls_back_to_on_demand_when_address_space_is_short() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return in_child();
    }
    // Build the guests before the limit applies: cargo needs more address space.
    let hello = sluice_runtime::guest_build::example("hello").unwrap();
    let output = Command::new("prlimit")
        .arg(format!("--as={ADDRESS_SPACE_BYTES}"))
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "falls_back_to_on_demand_when_address_space_is_short",
            "--nocapture",
        ])
        .env(CHILD_ENV, &hello)
        .output()
        .expect("prlimit (util-linux) runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("child checks passed"),
        "the child did not run the checks:\n{stdout}\n{stderr}"
    );
}

fn in_child() {
    // With pooling demanded, the reservation failure is an error that says why.
    match Runtime::new(RuntimeConfig::default().allocator(AllocatorChoice::Pooling)) {
        Ok(_) => panic!("pooling succeeded under a {ADDRESS_SPACE_BYTES}-byte address-space limit"),
        Err(err) => assert!(
            err.to_string()
                .contains("cannot create the wasmtime engine"),
            "{err}"
        ),
    }
    let runtime = Runtime::new(RuntimeConfig::default()).expect("fallback runtime");
    assert_eq!(runtime.allocator(), AllocatorKind::OnDemand);
    let hello_path = std::env::var_os(CHILD_ENV).unwrap();
    let hello = runtime.load(&std::fs::read(hello_path).unwrap()).unwrap();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(assert_hello_works(&runtime, &hello));
    println!("child checks passed");
}

#[test]
fn pooling_is_used_where_it_fits() {
    let runtime = Runtime::new(RuntimeConfig::default().max_concurrency(4)).unwrap();
    assert_eq!(runtime.allocator(), AllocatorKind::Pooling);
    let runtime =
        Runtime::new(RuntimeConfig::default().allocator(AllocatorChoice::OnDemand)).unwrap();
    assert_eq!(runtime.allocator(), AllocatorKind::OnDemand);
}

//! The component validator: the structural check every upload goes through before it is
//! compiled (header, component or core module, world, imports), on any bytes; and the
//! manifest parser, on any text, for both worlds. Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_runtime::World;
use sluice_runtime::flow::catalog::ComponentManifest;

fuzz_target!(|data: &[u8]| {
    let _ = sluice_runtime::check_component(data);
    if let Ok(text) = std::str::from_utf8(data) {
        for world in [World::Component, World::Flow] {
            let _ = ComponentManifest::parse(text, world);
        }
    }
});

//! What `load` refuses, with which message, and the artifact cache across restarts.

mod common;

use common::*;
use sluice_runtime::{ContentHash, LoadError, LoadOrigin, Runtime, RuntimeConfig, World};

fn refusal(bytes: &[u8]) -> String {
    let runtime = runtime(2);
    match runtime.load(bytes) {
        Ok(component) => panic!("loaded {component:?}"),
        Err(err) => err.to_string(),
    }
}

#[test]
fn random_bytes_are_not_webassembly() {
    let message = refusal(b"PK\x03\x04 this is a zip file, not a component");
    assert!(message.contains("not a WebAssembly binary"), "{message}");
}

#[test]
fn a_core_module_is_not_a_component() {
    // The smallest valid core module: the magic number and version 1.
    let message = refusal(b"\0asm\x01\0\0\0");
    assert!(
        message.contains("core WebAssembly module, not a component"),
        "{message}"
    );
}

#[test]
fn a_truncated_component_is_malformed() {
    let hello = guest_bytes("hello");
    let message = refusal(&hello[..hello.len() / 2]);
    assert!(message.contains("malformed component"), "{message}");
}

#[test]
fn a_component_of_another_world_is_refused() {
    let message = refusal(&guest_bytes("not-sluice"));
    assert!(
        message.contains("does not implement a Sluice world"),
        "{message}"
    );
    assert!(message.contains("`wasi:cli/run@0.2.0`"), "{message}");
}

#[test]
fn a_forbidden_import_is_named() {
    let message = refusal(&guest_bytes("forbidden-import"));
    assert!(
        message.contains("imports `wasi:keyvalue/store@0.2.0-draft`"),
        "{message}"
    );
    assert!(message.contains("may import only"), "{message}");
}

#[test]
fn oversized_uploads_are_refused_before_parsing() {
    let runtime = Runtime::new(
        RuntimeConfig::default()
            .max_concurrency(2)
            .max_component_bytes(1000),
    )
    .unwrap();
    match runtime.load(&guest_bytes("hello")) {
        Err(LoadError::TooLarge { limit: 1000, .. }) => {}
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

#[test]
fn identical_bytes_compile_once() {
    let runtime = runtime(2);
    let bytes = guest_bytes("hello");
    let first = runtime.load(&bytes).unwrap();
    let second = runtime.load(&bytes).unwrap();
    assert_eq!(first.hash(), ContentHash::of(&bytes));
    assert_eq!(first.world(), World::Component);
    assert_eq!(
        first.origin(),
        second.origin(),
        "the second load reuses the first"
    );
    assert!(
        first
            .imports()
            .iter()
            .any(|name| name.starts_with("sluice:flow/log@"))
    );
    assert_eq!(load(&runtime, "hello-flow").world(), World::Flow);
}

#[tokio::test]
async fn precompiled_artifacts_survive_a_restart() {
    let cache = tempfile::tempdir().unwrap();
    let bytes = guest_bytes("hello");
    let hash = ContentHash::of(&bytes);
    {
        let runtime = Runtime::new(
            RuntimeConfig::default()
                .max_concurrency(2)
                .cache_dir(cache.path()),
        )
        .unwrap();
        let component = runtime.load(&bytes).unwrap();
        assert!(matches!(component.origin(), LoadOrigin::Compiled { .. }));
        // Nothing to load by hash in a fresh cache for other bytes.
        let unknown = ContentHash::of(b"never uploaded");
        assert!(matches!(
            runtime.load_cached(&unknown),
            Err(LoadError::NotCached(_))
        ));
    }
    let engine_dirs: Vec<_> = std::fs::read_dir(cache.path()).unwrap().collect();
    assert_eq!(
        engine_dirs.len(),
        1,
        "one directory per engine compatibility hash"
    );
    let dir = engine_dirs[0].as_ref().unwrap().path();
    assert!(dir.join(format!("{hash}.cwasm")).is_file());
    assert!(dir.join(format!("{hash}.idx")).is_file());

    // A new runtime (a restarted server) loads by hash, without the bytes, and runs it.
    let runtime = Runtime::new(
        RuntimeConfig::default()
            .max_concurrency(2)
            .cache_dir(cache.path()),
    )
    .unwrap();
    let component = runtime.load_cached(&hash).unwrap();
    assert!(
        matches!(component.origin(), LoadOrigin::ArtifactCache { .. }),
        "{:?}",
        component.origin()
    );
    assert_eq!(component.world(), World::Component);
    assert_eq!(component.source_len(), bytes.len() as u64);
    assert_hello_works(&runtime, &component).await;

    // A corrupted artifact is detected and recompiled from the bytes.
    drop(component);
    drop(runtime);
    std::fs::write(dir.join(format!("{hash}.cwasm")), b"garbage").unwrap();
    let runtime = Runtime::new(
        RuntimeConfig::default()
            .max_concurrency(2)
            .cache_dir(cache.path()),
    )
    .unwrap();
    assert!(runtime.load_cached(&hash).is_err());
    let component = runtime.load(&bytes).unwrap();
    assert!(matches!(component.origin(), LoadOrigin::Compiled { .. }));
    assert_hello_works(&runtime, &component).await;
}

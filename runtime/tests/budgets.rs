//! Budgets outside the guest's linear memory: every log record costs a fixed overhead,
//! state writes are held to a quota, a guest that exits (at instantiation or in a
//! call) is a guest fault, and an output nested deeper than state accepts is invalid.
//! Each hostile guest ends with its typed outcome and the runtime runs `hello` after.

mod common;

use std::sync::Arc;

use common::*;
use sluice_runtime::{
    Capabilities, LOG_RECORD_OVERHEAD_BYTES, Limits, MAX_JSON_DEPTH, MemoryLogSink,
    MemoryStateStore, Outcome, StateNamespace, StateQuota, StateUsage,
};

#[tokio::test]
async fn empty_log_lines_hit_the_log_limit() {
    let runtime = runtime(4);
    let flood = load(&runtime, "empty-log-flood");
    let hello = load(&runtime, "hello");
    let (caps, logs) = capabilities();
    let budget = 64usize << 10;
    let limits = Limits::default().log_bytes(budget);
    let report = run(&runtime, &flood, action("run", "{}"), &caps, &limits).await;
    assert_eq!(report.outcome, Outcome::LogLimit { limit: budget });
    let records = logs.records().len() as u64;
    let most = budget as u64 / LOG_RECORD_OVERHEAD_BYTES;
    assert_eq!(records, most, "records kept on a {budget}-byte budget");
    // What was charged: every record written plus the one refused.
    assert_eq!(
        report.metering.log_bytes,
        (records + 1) * LOG_RECORD_OVERHEAD_BYTES
    );
    assert_hello_works(&runtime, &hello).await;
}

fn instance_scope() -> StateNamespace {
    // `common::context` runs as tenant-a, instance-1.
    StateNamespace::Instance {
        tenant: "tenant-a".into(),
        instance: "instance-1".into(),
    }
}

fn guest_error_message(outcome: &Outcome) -> &str {
    match outcome {
        Outcome::GuestError { error } => &error.message,
        other => panic!("expected a guest error, got {other:?}"),
    }
}

#[tokio::test]
async fn state_flood_stops_at_the_default_instance_quota() {
    let runtime = runtime(4);
    let flood = load(&runtime, "state-flood");
    let hello = load(&runtime, "hello");
    let store = Arc::new(MemoryStateStore::new());
    let caps = Capabilities {
        state: store.clone(),
        log: Arc::new(MemoryLogSink::new()),
        ..Capabilities::default()
    };
    let report = run(
        &runtime,
        &flood,
        action("run", "{}"),
        &caps,
        &Limits::default(),
    )
    .await;
    let message = guest_error_message(&report.outcome);
    assert!(message.contains("QuotaExceeded"), "{message}");
    let quota = StateQuota::default();
    let used = store.usage(&instance_scope());
    assert!(used.bytes <= quota.instance_bytes, "{used:?}");
    // 1 MiB values: the store is full to within one value.
    assert!(used.bytes > quota.instance_bytes - (1 << 20), "{used:?}");
    assert_eq!(store.tenant_usage("tenant-a"), used);
    assert_hello_works(&runtime, &hello).await;
}

#[tokio::test]
async fn state_quota_counts_keys_and_every_scope_of_the_instance() {
    let runtime = runtime(4);
    let flood = load(&runtime, "state-flood");
    let store = Arc::new(MemoryStateStore::with_quota(StateQuota {
        instance_bytes: 1 << 20,
        instance_keys: 25,
        ..StateQuota::default()
    }));
    let caps = Capabilities {
        state: store.clone(),
        log: Arc::new(MemoryLogSink::new()),
        ..Capabilities::default()
    };
    let small = r#"{"valueBytes": 10, "scope": "flow"}"#;
    let report = run(
        &runtime,
        &flood,
        action("run", small),
        &caps,
        &Limits::default(),
    )
    .await;
    assert!(
        guest_error_message(&report.outcome).contains("refused after 25 keys"),
        "{:?}",
        report.outcome
    );
    // The instance scope shares the flow scope's quota: no key left.
    let report = run(
        &runtime,
        &flood,
        action("run", r#"{"valueBytes": 10}"#),
        &caps,
        &Limits::default(),
    )
    .await;
    assert!(
        guest_error_message(&report.outcome).contains("refused after 0 keys"),
        "{:?}",
        report.outcome
    );
    // Keys `flood-0` to `flood-24` (7 or 8 bytes), each with a 12-byte value.
    assert_eq!(
        store.usage(&instance_scope()),
        StateUsage {
            bytes: 25 * (7 + 12) + 15,
            keys: 25
        }
    );
}

#[tokio::test]
async fn a_guest_ignoring_quota_errors_ends_on_a_budget_with_state_bounded() {
    let runtime = runtime(4);
    let flood = load(&runtime, "state-flood");
    let quota = StateQuota {
        instance_bytes: 4 << 20,
        ..StateQuota::default()
    };
    let store = Arc::new(MemoryStateStore::with_quota(quota));
    let caps = Capabilities {
        state: store.clone(),
        log: Arc::new(MemoryLogSink::new()),
        ..Capabilities::default()
    };
    let limits = Limits::default().host_calls(200);
    let report = run(
        &runtime,
        &flood,
        action("run", r#"{"keepGoing": true}"#),
        &caps,
        &limits,
    )
    .await;
    assert_eq!(report.outcome, Outcome::HostCallLimit { limit: 200 });
    assert!(store.usage(&instance_scope()).bytes <= quota.instance_bytes);
}

fn trap_message(outcome: &Outcome) -> &str {
    match outcome {
        Outcome::Trap { message, .. } => message,
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[tokio::test]
async fn exit_from_a_constructor_is_a_guest_fault() {
    let runtime = runtime(4);
    let guest = load(&runtime, "exit-in-start");
    let hello = load(&runtime, "hello");
    let (caps, _) = capabilities();
    // Even `manifest()`, which the registry calls on upload, never returns: the
    // constructor runs first.
    for call in [action("run", "{}"), sluice_runtime::Call::Manifest] {
        let report = run(&runtime, &guest, call, &caps, &Limits::default()).await;
        let message = trap_message(&report.outcome);
        // A Rust cdylib for wasip2 runs its constructors at the start of each export,
        // not at instantiation: this guest exercises the exit, not the phase (the
        // test below arms a start function for that).
        assert!(message.contains("exited with status 1"), "{message}");
        assert!(!report.outcome.is_limit());
    }
    assert_hello_works(&runtime, &hello).await;
}

#[tokio::test]
async fn exit_in_a_start_function_is_a_guest_fault_of_instantiation() {
    let runtime = runtime(4);
    let bytes = start_section::exit_at_start(&guest_bytes("exit-in-start"));
    // Loading compiles and pre-instantiates; no guest code runs yet.
    let guest = runtime.load(&bytes).expect("the armed component loads");
    let hello = load(&runtime, "hello");
    let (caps, _) = capabilities();
    for call in [action("run", "{}"), sluice_runtime::Call::Manifest] {
        let report = run(&runtime, &guest, call, &caps, &Limits::default()).await;
        let message = trap_message(&report.outcome);
        assert!(
            message.contains("exited with status 1 during instantiation"),
            "{message}"
        );
        assert!(!report.outcome.is_limit());
    }
    assert_hello_works(&runtime, &hello).await;
}

/// Component surgery for the test above: Rust guests never run code while they are
/// instantiated, so this gives a real component's main core module a start function
/// that calls its `wasi:cli/exit` import, the way a module compiled from another
/// language can.
mod start_section {
    const CORE_MODULE: u8 = 1;
    const TYPE: u8 = 1;
    const IMPORT: u8 = 2;
    const FUNCTION: u8 = 3;
    const START: u8 = 8;
    const ELEMENT: u8 = 9;
    const CODE: u8 = 10;
    const DATA_COUNT: u8 = 12;

    fn read_leb(bytes: &[u8], at: &mut usize) -> u64 {
        let (mut value, mut shift) = (0u64, 0);
        loop {
            let byte = bytes[*at];
            *at += 1;
            value |= u64::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                return value;
            }
        }
    }

    fn write_leb(value: u64, out: &mut Vec<u8>) {
        wasm_encoder::Encode::encode(&value, out);
    }

    /// (id, contents) of each section after the 8-byte header of a module or component.
    fn sections(bytes: &[u8]) -> Vec<(u8, &[u8])> {
        let mut at = 8;
        let mut sections = Vec::new();
        while at < bytes.len() {
            let id = bytes[at];
            at += 1;
            let size = read_leb(bytes, &mut at) as usize;
            sections.push((id, &bytes[at..at + size]));
            at += size;
        }
        sections
    }

    fn section(id: u8, contents: &[u8], out: &mut Vec<u8>) {
        out.push(id);
        write_leb(contents.len() as u64, out);
        out.extend_from_slice(contents);
    }

    /// A vector section with `entry` appended: the count re-encoded, entries kept.
    fn appended(contents: &[u8], entry: &[u8]) -> Vec<u8> {
        let mut at = 0;
        let count = read_leb(contents, &mut at);
        let mut out = Vec::new();
        write_leb(count + 1, &mut out);
        out.extend_from_slice(&contents[at..]);
        out.extend_from_slice(entry);
        out
    }

    fn read_name<'a>(bytes: &'a [u8], at: &mut usize) -> &'a [u8] {
        let size = read_leb(bytes, at) as usize;
        *at += size;
        &bytes[*at - size..*at]
    }

    fn skip_limits(bytes: &[u8], at: &mut usize) {
        let flags = bytes[*at];
        *at += 1;
        read_leb(bytes, at);
        if flags & 1 != 0 {
            read_leb(bytes, at);
        }
    }

    /// Imported functions, and the function index of `wasi:cli/exit`'s `exit`.
    fn imports(contents: &[u8]) -> (u64, u64) {
        let mut at = 0;
        let (mut functions, mut exit) = (0, None);
        for _ in 0..read_leb(contents, &mut at) {
            let module = read_name(contents, &mut at);
            let name = read_name(contents, &mut at);
            let kind = contents[at];
            at += 1;
            match kind {
                0 => {
                    read_leb(contents, &mut at);
                    if module.starts_with(b"wasi:cli/exit@") && name == b"exit" {
                        exit = Some(functions);
                    }
                    functions += 1;
                }
                1 => {
                    at += 1;
                    skip_limits(contents, &mut at);
                }
                2 => skip_limits(contents, &mut at),
                3 => at += 2,
                _ => {
                    at += 1;
                    read_leb(contents, &mut at);
                }
            }
        }
        (functions, exit.expect("the module imports wasi:cli/exit"))
    }

    fn count(contents: &[u8]) -> u64 {
        read_leb(contents, &mut 0)
    }

    /// The module with a new `() -> ()` function calling `exit(err)` as its start.
    fn armed_module(module: &[u8]) -> Vec<u8> {
        let parts = sections(module);
        let find = |id| parts.iter().find(|(sid, _)| *sid == id).map(|(_, c)| *c);
        assert!(
            find(START).is_none(),
            "the module already has a start function"
        );
        let (imported, exit) = imports(find(IMPORT).expect("an import section"));
        let new_type = count(find(TYPE).expect("a type section"));
        let new_function = imported + count(find(FUNCTION).expect("a function section"));
        // No locals; `i32.const 1` is `result::err`, then `call exit`, `end`.
        let mut body = vec![0x00, 0x41, 0x01, 0x10];
        write_leb(exit, &mut body);
        body.push(0x0b);
        let mut code_entry = Vec::new();
        write_leb(body.len() as u64, &mut code_entry);
        code_entry.extend_from_slice(&body);
        let mut function_entry = Vec::new();
        write_leb(new_type, &mut function_entry);

        let mut out = module[..8].to_vec();
        let mut started = false;
        for (id, contents) in parts {
            if !started && matches!(id, ELEMENT | DATA_COUNT | CODE) {
                let mut start = Vec::new();
                write_leb(new_function, &mut start);
                section(START, &start, &mut out);
                started = true;
            }
            match id {
                TYPE => section(id, &appended(contents, &[0x60, 0x00, 0x00]), &mut out),
                FUNCTION => section(id, &appended(contents, &function_entry), &mut out),
                CODE => section(id, &appended(contents, &code_entry), &mut out),
                _ => section(id, contents, &mut out),
            }
        }
        out
    }

    /// `component` with its largest core module (the guest's own code) armed.
    pub fn exit_at_start(component: &[u8]) -> Vec<u8> {
        let parts = sections(component);
        let main = parts
            .iter()
            .enumerate()
            .filter(|(_, (id, _))| *id == CORE_MODULE)
            .max_by_key(|(_, (_, contents))| contents.len())
            .map(|(index, _)| index)
            .expect("a core module");
        let mut out = component[..8].to_vec();
        for (index, (id, contents)) in parts.into_iter().enumerate() {
            if index == main {
                section(id, &armed_module(contents), &mut out);
            } else {
                section(id, contents, &mut out);
            }
        }
        out
    }
}

#[tokio::test]
async fn exit_during_a_call_is_a_guest_fault() {
    let runtime = runtime(4);
    let guest = load(&runtime, "exit-in-call");
    let (caps, _) = capabilities();
    let report = run(
        &runtime,
        &guest,
        action("run", "{}"),
        &caps,
        &Limits::default(),
    )
    .await;
    let message = trap_message(&report.outcome);
    assert!(
        message.contains("exited with status 0 during the call"),
        "{message}"
    );
}

#[tokio::test]
async fn deep_output_is_invalid() {
    let runtime = runtime(4);
    let guest = load(&runtime, "deep-output");
    let hello = load(&runtime, "hello");
    let (caps, _) = capabilities();
    let report = run(
        &runtime,
        &guest,
        action("run", "{}"),
        &caps,
        &Limits::default(),
    )
    .await;
    match &report.outcome {
        Outcome::InvalidOutput { message } => {
            assert!(message.contains("nested more than 127 levels"), "{message}")
        }
        other => panic!("expected invalid-output, got {other:?}"),
    }
    // At the limit the output is accepted, and state accepts the same document.
    let at_limit = format!(r#"{{"depth": {MAX_JSON_DEPTH}}}"#);
    let report = run(
        &runtime,
        &guest,
        action("run", &at_limit),
        &caps,
        &Limits::default(),
    )
    .await;
    let document = json_output(&report);
    let text = document.to_string();
    assert!(sluice_runtime::canonical_json(&text).is_ok());
    let deeper = format!("[{text}]");
    assert!(sluice_runtime::canonical_json(&deeper).is_err());
    assert_hello_works(&runtime, &hello).await;
}

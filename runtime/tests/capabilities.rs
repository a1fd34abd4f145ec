//! Every host capability, driven through the real `hello` and `hello-flow` guests.

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::*;
use serde_json::json;
use sluice_runtime::{
    Call, Capabilities, Connection, Data, EgressPolicy, ExecuteError, ExecutionContext, GuestError,
    GuestErrorKind, HttpRequest, Invoker, Limits, LoadedComponent, LogLevel, MemoryStateStore,
    OAuthToken, Outcome, Output, Returned, Runtime, StateNamespace, StateStore, StaticConfig,
    StaticConnections, TriggerOutcome,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn echo_returns_its_input_logs_and_is_metered() {
    let runtime = runtime(4);
    let hello = load(&runtime, "hello");
    let (caps, logs) = capabilities();
    let report = run(
        &runtime,
        &hello,
        action("echo", r#"{"a": [1, 2, 3]}"#),
        &caps,
        &Limits::default(),
    )
    .await;
    assert_eq!(json_output(&report), json!({"a": [1, 2, 3]}));
    let records = logs.records();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].message, "echo");
    assert_eq!(records[0].level, LogLevel::Info);
    assert_eq!(records[0].execution_id, "exec-1");
    assert_eq!(records[0].step.as_deref(), Some("step-1"));
    assert_eq!(records[0].fields.as_deref(), Some(r#"{"bytes":16}"#));
    let metering = &report.metering;
    assert!(metering.fuel_used > 0);
    assert!(metering.peak_memory_bytes >= 64 << 10);
    assert_eq!(metering.host_calls, 1);
    assert_eq!(
        metering.log_bytes,
        sluice_runtime::LOG_RECORD_OVERHEAD_BYTES
            + "echo".len() as u64
            + r#"{"bytes":16}"#.len() as u64
    );
    assert!(metering.instantiate_time <= metering.wall_time);
}

#[tokio::test]
async fn state_persists_per_scope_and_per_tenant() {
    let runtime = runtime(4);
    let hello = load(&runtime, "hello");
    let store = Arc::new(MemoryStateStore::new());
    let caps = Capabilities {
        state: store.clone(),
        ..Capabilities::default()
    };
    for expected in 1..=3 {
        let report = run(
            &runtime,
            &hello,
            action("counter", "{}"),
            &caps,
            &Limits::default(),
        )
        .await;
        assert_eq!(json_output(&report), json!({"count": expected}));
    }
    let flow_scope = StateNamespace::Flow {
        tenant: "tenant-a".into(),
        instance: "instance-1".into(),
        flow: "Sync issues".into(),
    };
    assert_eq!(
        store.entries(&flow_scope),
        vec![("count".to_string(), "3".to_string())]
    );

    // Values are stored canonically; another tenant with the same ids sees nothing.
    let remember = action(
        "remember",
        r#"{"scope": "instance", "key": "k", "value": {"b": 1, "a": [true]}}"#,
    );
    run(&runtime, &hello, remember, &caps, &Limits::default()).await;
    let recall = action("recall", r#"{"scope": "instance", "key": "k"}"#);
    let report = run(&runtime, &hello, recall.clone(), &caps, &Limits::default()).await;
    assert_eq!(
        json_output(&report),
        json!({"value": {"a": [true], "b": 1}})
    );
    let other_tenant = ExecutionContext {
        tenant_id: "tenant-b".into(),
        ..context("exec-2")
    };
    let report = runtime
        .execute(&hello, recall, other_tenant, &caps, &Limits::default())
        .await
        .unwrap();
    assert_eq!(json_output(&report), json!({"value": null}));
    let instance_scope = StateNamespace::Instance {
        tenant: "tenant-a".into(),
        instance: "instance-1".into(),
    };
    assert_eq!(
        store.entries(&instance_scope),
        vec![("k".to_string(), r#"{"a":[true],"b":1}"#.to_string())]
    );

    // Compare-and-swap compares JSON, not text.
    let swap = |expected: &str, new: &str| {
        action(
            "swap",
            &format!(
                r#"{{"scope": "instance", "key": "k", "expected": {expected}, "new": {new}}}"#
            ),
        )
    };
    let report = run(
        &runtime,
        &hello,
        swap(r#"{"b": 2, "a": [true]}"#, "1"),
        &caps,
        &Limits::default(),
    )
    .await;
    assert_eq!(json_output(&report), json!({"swapped": false}));
    let report = run(
        &runtime,
        &hello,
        swap(r#"{"b": 1, "a": [true]}"#, "1"),
        &caps,
        &Limits::default(),
    )
    .await;
    assert_eq!(json_output(&report), json!({"swapped": true}));
    let report = run(
        &runtime,
        &hello,
        action("forget", r#"{"scope": "instance", "key": "k"}"#),
        &caps,
        &Limits::default(),
    )
    .await;
    assert_eq!(json_output(&report), json!({"existed": true}));
}

#[tokio::test]
async fn oversized_state_values_are_refused_to_the_guest() {
    let runtime = runtime(4);
    let hello = load(&runtime, "hello");
    let (caps, _) = capabilities();
    let limits = Limits {
        state_value_bytes: 100,
        ..Limits::default()
    };
    let big = "x".repeat(200);
    let call = action(
        "remember",
        &format!(r#"{{"scope": "flow", "key": "k", "value": "{big}"}}"#),
    );
    let report = run(&runtime, &hello, call, &caps, &limits).await;
    match report.outcome {
        Outcome::GuestError { error } => {
            assert_eq!(error.kind, GuestErrorKind::InvalidInput);
            assert!(
                error.message.contains("limit is 100 bytes"),
                "{}",
                error.message
            );
        }
        other => panic!("expected a guest error, got {other:?}"),
    }
}

/// A state store whose reads hang: the wall-clock deadline must still end the call.
struct HangingStore;

#[async_trait]
impl StateStore for HangingStore {
    async fn get(
        &self,
        _: &StateNamespace,
        _: &str,
    ) -> Result<Option<String>, sluice_runtime::StateStoreError> {
        tokio::time::sleep(Duration::from_secs(30)).await;
        Ok(None)
    }
    async fn set(
        &self,
        _: &StateNamespace,
        _: &str,
        _: String,
    ) -> Result<(), sluice_runtime::StateStoreError> {
        Ok(())
    }
    async fn delete(
        &self,
        _: &StateNamespace,
        _: &str,
    ) -> Result<bool, sluice_runtime::StateStoreError> {
        Ok(false)
    }
    async fn compare_and_swap(
        &self,
        _: &StateNamespace,
        _: &str,
        _: Option<&str>,
        _: Option<String>,
    ) -> Result<bool, sluice_runtime::StateStoreError> {
        Ok(false)
    }
}

#[tokio::test]
async fn the_deadline_covers_time_spent_in_host_calls() {
    let runtime = runtime(4);
    let hello = load(&runtime, "hello");
    let caps = Capabilities {
        state: Arc::new(HangingStore),
        ..Capabilities::default()
    };
    let deadline = Duration::from_millis(200);
    let started = std::time::Instant::now();
    let report = run(
        &runtime,
        &hello,
        action("recall", r#"{"scope": "flow", "key": "k"}"#),
        &caps,
        &Limits::default().timeout(deadline),
    )
    .await;
    assert_eq!(report.outcome, Outcome::Timeout { limit_ms: 200 });
    assert!(
        started.elapsed() < deadline * 2,
        "took {:?}",
        started.elapsed()
    );
    assert_hello_works(&runtime, &hello).await;
}

#[tokio::test]
async fn context_config_and_connections_reach_the_guest() {
    let runtime = runtime(4);
    let hello = load(&runtime, "hello");
    let connections = StaticConnections::new()
        .with(Connection {
            key: "github".into(),
            kind: "oauth2".into(),
            fields: json!({"clientId": "abc"}),
            token: Some(OAuthToken {
                access_token: "token-123".into(),
                token_type: "bearer".into(),
                expires_at_ms: None,
                scopes: vec!["repo".into()],
            }),
        })
        .with(Connection {
            key: "stale".into(),
            kind: "oauth2".into(),
            fields: json!({}),
            token: Some(OAuthToken {
                access_token: "old".into(),
                token_type: "bearer".into(),
                expires_at_ms: Some(1),
                scopes: vec![],
            }),
        });
    let caps = Capabilities {
        connections: Arc::new(connections),
        config: Arc::new(
            StaticConfig::new()
                .with_str("region", "eu")
                .with_json("retries", json!(3)),
        ),
        ..Capabilities::default()
    };
    let report = run(
        &runtime,
        &hello,
        action("whoami", "{}"),
        &caps,
        &Limits::default(),
    )
    .await;
    let output = json_output(&report);
    assert_eq!(output["config"], json!({"region": "eu", "retries": 3}));
    assert_eq!(output["context"]["executionId"], "exec-1");
    assert_eq!(output["context"]["tenantId"], "tenant-a");
    assert_eq!(output["context"]["flowName"], "Sync issues");
    assert_eq!(
        output["context"]["webhookUrls"]["Sync issues"],
        "https://hooks.example/abc"
    );

    let report = run(
        &runtime,
        &hello,
        action("connection", r#"{"key": "github"}"#),
        &caps,
        &Limits::default(),
    )
    .await;
    assert_eq!(
        json_output(&report),
        json!({"key": "github", "kind": "oauth2", "fields": {"clientId": "abc"}, "token": "token-123"})
    );
    for (key, needle) in [("stale", "expired"), ("missing", "no connection `missing`")] {
        let report = run(
            &runtime,
            &hello,
            action("connection", &format!(r#"{{"key": "{key}"}}"#)),
            &caps,
            &Limits::default(),
        )
        .await;
        match report.outcome {
            Outcome::GuestError { error } => {
                assert_eq!(error.kind, GuestErrorKind::Connection);
                assert_eq!(error.connection.as_deref(), Some(key));
                assert!(error.message.contains(needle), "{}", error.message);
            }
            other => panic!("expected a connection error, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn every_error_kind_crosses_the_boundary() {
    let runtime = runtime(4);
    let hello = load(&runtime, "hello");
    let (caps, _) = capabilities();
    for (kind, expected) in [
        ("invalid-input", GuestErrorKind::InvalidInput),
        ("connection", GuestErrorKind::Connection),
        ("retryable", GuestErrorKind::Retryable),
        ("fatal", GuestErrorKind::Fatal),
    ] {
        let call = action(
            "fail",
            &format!(r#"{{"kind": "{kind}", "message": "boom", "key": "crm"}}"#),
        );
        let report = run(&runtime, &hello, call, &caps, &Limits::default()).await;
        match report.outcome {
            Outcome::GuestError { error } => {
                assert_eq!(error.kind, expected);
                assert_eq!(error.message, "boom");
            }
            other => panic!("expected a guest error, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn an_action_can_shape_a_synchronous_response() {
    let runtime = runtime(4);
    let hello = load(&runtime, "hello");
    let (caps, _) = capabilities();
    let call = action(
        "respond",
        r#"{"status": 415, "body": "nope", "headers": [["x-why", "format"]]}"#,
    );
    let report = run(&runtime, &hello, call, &caps, &Limits::default()).await;
    assert_eq!(
        report.outcome,
        Outcome::Completed {
            result: Returned::Output(Output {
                data: Data::Bytes(b"nope".to_vec()),
                content_type: Some("text/plain".into()),
                status: Some(415),
                headers: vec![("x-why".into(), "format".into())],
                branch: None,
            })
        }
    );
}

#[tokio::test]
async fn triggers_data_sources_and_lifecycle_hooks() {
    let runtime = runtime(4);
    let hello = load(&runtime, "hello");
    let store = Arc::new(MemoryStateStore::new());
    let caps = Capabilities {
        state: store.clone(),
        ..Capabilities::default()
    };
    let request = |headers: Vec<(String, String)>| Call::Trigger {
        trigger: "webhook".into(),
        request: HttpRequest {
            method: "POST".into(),
            path: "".into(),
            query: vec![],
            headers,
            body: br#"{"action":"opened"}"#.to_vec(),
        },
        inputs: "{}".into(),
    };
    let report = run(&runtime, &hello, request(vec![]), &caps, &Limits::default()).await;
    assert_eq!(
        report.outcome,
        Outcome::Completed {
            result: Returned::Trigger(TriggerOutcome::Accept {
                payload: Data::Json(r#"{"action":"opened"}"#.into()),
                branch: None,
                response: None,
            })
        }
    );
    let report = run(
        &runtime,
        &hello,
        request(vec![("x-reject".into(), "1".into())]),
        &caps,
        &Limits::default(),
    )
    .await;
    match report.outcome {
        Outcome::Completed {
            result: Returned::Trigger(TriggerOutcome::Respond { response }),
        } => {
            assert_eq!(response.status, 401);
            assert_eq!(response.body, b"rejected");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }

    let report = run(
        &runtime,
        &hello,
        Call::DataSource {
            name: "colors".into(),
            input: "{}".into(),
        },
        &caps,
        &Limits::default(),
    )
    .await;
    match report.outcome {
        Outcome::Completed {
            result: Returned::DataSource(json),
        } => assert!(json.contains("\"red\""), "{json}"),
        other => panic!("expected a data source result, got {other:?}"),
    }

    let instance = StateNamespace::Instance {
        tenant: "tenant-a".into(),
        instance: "instance-1".into(),
    };
    let hook = |deploy: bool| {
        let (trigger, inputs) = ("webhook".to_string(), "{}".to_string());
        if deploy {
            Call::InstanceDeploy { trigger, inputs }
        } else {
            Call::InstanceRemove { trigger, inputs }
        }
    };
    let report = run(&runtime, &hello, hook(true), &caps, &Limits::default()).await;
    assert_eq!(
        report.outcome,
        Outcome::Completed {
            result: Returned::Done
        }
    );
    assert_eq!(
        store.entries(&instance),
        vec![("deployed:webhook".to_string(), "true".to_string())]
    );
    run(&runtime, &hello, hook(false), &caps, &Limits::default()).await;
    assert!(store.entries(&instance).is_empty());
}

/// Answers every HTTP request on a loopback port with `200 hello from <path>`.
async fn serve_http() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 4096];
                let read = socket.read(&mut buffer).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buffer[..read]);
                let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
                let body = format!("hello from {path}");
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    port
}

#[tokio::test]
async fn outbound_http_honours_the_allow_list() {
    let runtime = runtime(4);
    let hello = load(&runtime, "hello");
    let port = serve_http().await;
    let (mut caps, logs) = capabilities();
    caps.egress = Arc::new(EgressPolicy::parse([format!("http://127.0.0.1:{port}")]).unwrap());
    // The fake listens on loopback, which only the operator can open.
    caps.network = Arc::new(sluice_runtime::NetworkPolicy::new().allow_loopback());
    let call = |port: u16| {
        action(
            "http-get",
            &format!(r#"{{"url": "http://127.0.0.1:{port}/issues?page=2"}}"#),
        )
    };

    let report = run(&runtime, &hello, call(port), &caps, &Limits::default()).await;
    assert_eq!(
        json_output(&report),
        json!({"status": 200, "body": "hello from /issues?page=2"})
    );

    // Same host, another port: denied before any connection is made, and logged.
    let other = serve_http().await;
    let report = run(&runtime, &hello, call(other), &caps, &Limits::default()).await;
    match report.outcome {
        Outcome::GuestError { error } => {
            assert!(error.message.contains("Denied"), "{}", error.message)
        }
        other => panic!("expected the request to be denied, got {other:?}"),
    }
    let denial = logs
        .records()
        .into_iter()
        .find(|record| record.level == LogLevel::Warn)
        .expect("a warning about the denied request");
    assert!(
        denial.message.contains(&format!("127.0.0.1:{other}")),
        "{}",
        denial.message
    );

    // The default policy denies everything.
    let report = run(
        &runtime,
        &hello,
        call(port),
        &Capabilities::default(),
        &Limits::default(),
    )
    .await;
    assert!(
        matches!(report.outcome, Outcome::GuestError { .. }),
        "{:?}",
        report.outcome
    );
}

/// Runs `invoke` calls as actions of `hello`, in their own sandbox.
struct HelloInvoker {
    runtime: Runtime,
    hello: LoadedComponent,
}

#[async_trait]
impl Invoker for HelloInvoker {
    async fn invoke(
        &self,
        caller: &ExecutionContext,
        component: &str,
        action: &str,
        input: String,
    ) -> Result<Output, GuestError> {
        if component != "hello" {
            return Err(GuestError::fatal(format!(
                "unknown component `{component}`"
            )));
        }
        let call = Call::Action {
            action: action.into(),
            input,
        };
        let report = self
            .runtime
            .execute(
                &self.hello,
                call,
                caller.clone(),
                &Capabilities::default(),
                &Limits::default(),
            )
            .await
            .map_err(|err| GuestError::fatal(err.to_string()))?;
        match report.outcome {
            Outcome::Completed {
                result: Returned::Output(output),
            } => Ok(output),
            Outcome::GuestError { error } => Err(error),
            other => Err(GuestError::fatal(format!(
                "step ended with {}",
                other.status()
            ))),
        }
    }

    async fn invoke_flow(
        &self,
        _: &ExecutionContext,
        name: &str,
        _: String,
    ) -> Result<Output, GuestError> {
        Err(GuestError::fatal(format!("no flow `{name}`")))
    }
}

#[tokio::test]
async fn a_code_native_flow_runs_and_invokes_components() {
    let runtime = runtime(4);
    let flow = load(&runtime, "hello-flow");
    let hello = load(&runtime, "hello");
    let (caps, logs) = capabilities();
    let execute = |payload: &str| Call::FlowExecution {
        payload: payload.into(),
    };

    let report = run(
        &runtime,
        &flow,
        execute(r#"{"issue": 7}"#),
        &caps,
        &Limits::default(),
    )
    .await;
    assert_eq!(json_output(&report), json!({"issue": 7}));
    assert_eq!(logs.records()[0].message, "hello-flow execution");

    let invoke =
        r#"{"invoke": {"component": "hello", "action": "echo", "input": {"via": "flow"}}}"#;
    let report = run(&runtime, &flow, execute(invoke), &caps, &Limits::default()).await;
    match report.outcome {
        Outcome::GuestError { error } => assert!(
            error.message.contains("without an invoker"),
            "{}",
            error.message
        ),
        other => panic!("expected a fatal error without an invoker, got {other:?}"),
    }

    let caps = Capabilities {
        invoker: Some(Arc::new(HelloInvoker {
            runtime: runtime.clone(),
            hello: hello.clone(),
        })),
        ..caps
    };
    let report = run(&runtime, &flow, execute(invoke), &caps, &Limits::default()).await;
    assert_eq!(json_output(&report), json!({"via": "flow"}));
    let failing = r#"{"invoke": {"component": "hello", "action": "fail", "input": {"kind": "retryable", "message": "later"}}}"#;
    let report = run(&runtime, &flow, execute(failing), &caps, &Limits::default()).await;
    match report.outcome {
        Outcome::GuestError { error } => assert_eq!(
            (error.kind, error.message.as_str()),
            (GuestErrorKind::Retryable, "later")
        ),
        other => panic!("expected the invoked action's error, got {other:?}"),
    }
}

#[tokio::test]
async fn calls_are_checked_before_anything_runs() {
    let runtime = runtime(4);
    let hello = load(&runtime, "hello");
    let flow = load(&runtime, "hello-flow");
    let (caps, _) = capabilities();
    let err = runtime
        .execute(
            &hello,
            Call::FlowExecution {
                payload: "{}".into(),
            },
            context("e"),
            &caps,
            &Limits::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ExecuteError::WrongWorld { .. }), "{err}");
    let err = runtime
        .execute(
            &flow,
            action("echo", "{}"),
            context("e"),
            &caps,
            &Limits::default(),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("world `flow`"), "{err}");
    let err = runtime
        .execute(
            &hello,
            action("echo", "{not json"),
            context("e"),
            &caps,
            &Limits::default(),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("input of run-action is not JSON"),
        "{err}"
    );
    let err = runtime
        .execute(
            &hello,
            action("echo", "{}"),
            context("e"),
            &caps,
            &Limits::default().memory_bytes(1 << 40),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ExecuteError::InvalidLimits(_)), "{err}");
    // Manifests are exported by both worlds.
    for component in [&hello, &flow] {
        let report = run(
            &runtime,
            component,
            Call::Manifest,
            &caps,
            &Limits::default(),
        )
        .await;
        assert!(report.outcome.is_success(), "{:?}", report.outcome);
    }
}

#[tokio::test]
async fn stdout_and_panics_reach_the_log() {
    let runtime = runtime(4);
    let hello = load(&runtime, "hello");
    let (caps, logs) = capabilities();
    let report = run(
        &runtime,
        &hello,
        action("print", r#"{"text": "printed, not logged"}"#),
        &caps,
        &Limits::default(),
    )
    .await;
    assert_eq!(json_output(&report), json!({"printed": true}));
    let records = logs.take();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].message, "printed, not logged");
    assert_eq!(
        records[0].fields.as_deref(),
        Some(r#"{"droppedBytes":0,"stream":"stdout"}"#)
    );

    let report = run(
        &runtime,
        &hello,
        action("panic", r#"{"message": "invariant broken"}"#),
        &caps,
        &Limits::default(),
    )
    .await;
    match &report.outcome {
        Outcome::Trap {
            message, stderr, ..
        } => {
            assert!(message.contains("unreachable"), "{message}");
            let stderr = stderr.as_deref().unwrap_or_default();
            assert!(stderr.contains("invariant broken"), "{stderr}");
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    let records = logs.take();
    assert!(
        records
            .iter()
            .any(|record| record.level == LogLevel::Warn
                && record.message.contains("invariant broken")),
        "{records:?}"
    );
    assert_hello_works(&runtime, &hello).await;
}

//! The SSRF matrix: the `http` example connector, run through the real sandbox, asks
//! for about twenty spellings of private destinations (loopback, numeric tricks,
//! IPv4-mapped IPv6, RFC 1918, CGNAT, link-local metadata, ULA, names a test resolver
//! maps to private addresses) under every rule form a tenant could write for them.
//! Every one is refused (at rule parse time, by name, or by address) and nothing
//! reaches the loopback listener, unless the operator opens loopback; then exactly the
//! loopback destinations really connect, and every other private range stays shut.

mod common;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use sluice_runtime::{
    EgressPolicy, Limits, LoadedComponent, NetworkPolicy, Outcome, Runtime, StaticResolver,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A listener on `[::]` (IPv4 and IPv6 loopback alike) that answers every request
/// with `200 ok` and counts the connections it accepted.
async fn listener() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("[::]:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = socket
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    });
    (port, accepted)
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// Names the test resolver knows; nothing here touches real DNS.
fn resolver() -> StaticResolver {
    StaticResolver::new()
        .with("localhost", vec![ip("127.0.0.1"), ip("::1")])
        .with("internal.example", vec![ip("127.0.0.1")])
        .with("metadata.example", vec![ip("169.254.169.254")])
        .with("intranet.example", vec![ip("10.0.0.1")])
        .with("mixed.example", vec![ip("10.0.0.1"), ip("127.0.0.1")])
}

/// One destination of the matrix: its host as written in the URL, and whether it
/// reaches the loopback listener once the operator opens loopback.
struct Case {
    host: &'static str,
    loopback: bool,
}

const CASES: &[Case] = &[
    Case {
        host: "127.0.0.1",
        loopback: true,
    },
    Case {
        host: "localhost",
        loopback: true,
    },
    Case {
        host: "[::1]",
        loopback: true,
    },
    Case {
        host: "[::ffff:127.0.0.1]",
        loopback: true,
    },
    Case {
        host: "internal.example",
        loopback: true,
    },
    Case {
        host: "mixed.example",
        loopback: true,
    },
    Case {
        host: "2130706433",
        loopback: false,
    },
    Case {
        host: "0x7f000001",
        loopback: false,
    },
    Case {
        host: "0177.0.0.1",
        loopback: false,
    },
    Case {
        host: "127.1",
        loopback: false,
    },
    Case {
        host: "0.0.0.0",
        loopback: false,
    },
    Case {
        host: "[::]",
        loopback: false,
    },
    Case {
        host: "169.254.169.254",
        loopback: false,
    },
    Case {
        host: "metadata.example",
        loopback: false,
    },
    Case {
        host: "10.0.0.1",
        loopback: false,
    },
    Case {
        host: "intranet.example",
        loopback: false,
    },
    Case {
        host: "192.168.1.1",
        loopback: false,
    },
    Case {
        host: "172.16.0.1",
        loopback: false,
    },
    Case {
        host: "100.64.0.1",
        loopback: false,
    },
    Case {
        host: "198.18.0.1",
        loopback: false,
    },
    Case {
        host: "[fd00::1]",
        loopback: false,
    },
    Case {
        host: "[fe80::1]",
        loopback: false,
    },
    Case {
        host: "[::7f00:1]",
        loopback: false,
    },
    Case {
        host: "[64:ff9b::7f00:1]",
        loopback: false,
    },
];

/// The rules a tenant might write to reach `host`: its own spelling, the canonical
/// loopback spellings, and the wildcard forms.
fn rule_forms(host: &str, port: u16) -> Vec<String> {
    vec![
        format!("http://{host}:{port}"),
        format!("http://127.0.0.1:{port}"),
        format!("*://localhost:*"),
        format!("http://*.example:{port}"),
        format!("http://*:{port}"),
        "*://*:*".to_string(),
        format!("http://2130706433:{port}"),
        format!("http://0x7f000001:{port}"),
        format!("http://0177.0.0.1:{port}"),
        format!("http://127.1:{port}"),
    ]
}

struct Matrix {
    runtime: Runtime,
    http: LoadedComponent,
    port: u16,
    accepted: Arc<AtomicUsize>,
}

enum Ended {
    Connected,
    /// Refused by name (the allow-list) or by address; the guest's error message.
    Refused(String),
}

impl Matrix {
    async fn run(&self, host: &str, rule: &EgressPolicy, network: &Arc<NetworkPolicy>) -> Ended {
        let (mut caps, _logs) = capabilities();
        caps.egress = Arc::new(rule.clone());
        caps.network = Arc::clone(network);
        let input = format!(
            r#"{{"method": "GET", "url": "http://{host}:{}/latest/meta-data", "timeoutMs": 5000}}"#,
            self.port
        );
        let report = run(
            &self.runtime,
            &self.http,
            action("request", &input),
            &caps,
            &Limits::default(),
        )
        .await;
        match report.outcome {
            Outcome::Completed { .. } => Ended::Connected,
            Outcome::GuestError { error } => Ended::Refused(error.message),
            other => panic!("{host}: unexpected outcome {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_destinations_are_refused_unless_the_operator_opens_them() {
    let runtime = runtime(4);
    let http = load(&runtime, "http");
    let (port, accepted) = listener().await;
    let matrix = Matrix {
        runtime,
        http,
        port,
        accepted,
    };

    let closed = Arc::new(NetworkPolicy::new().with_resolver(Arc::new(resolver())));
    let opened = Arc::new(
        NetworkPolicy::new()
            .with_resolver(Arc::new(resolver()))
            .allow_cidr("127.0.0.0/8")
            .unwrap()
            .allow_cidr("::1/128")
            .unwrap(),
    );

    let mut parsed_rules = 0;
    let mut refused_rules = 0;
    let mut connected = 0;
    for case in CASES {
        for rule in rule_forms(case.host, port) {
            let policy = match EgressPolicy::parse([&rule]) {
                Ok(policy) => policy,
                Err(err) => {
                    // Refused forms: wildcards that match every host, and numeric
                    // spellings that are not dotted-quad.
                    assert!(
                        rule.contains('*') && !rule.contains("*.")
                            || ["2130706433", "0x7f000001", "0177.0.0.1", "127.1:"]
                                .iter()
                                .any(|trick| rule.contains(trick)),
                        "{rule} was refused: {err}"
                    );
                    refused_rules += 1;
                    continue;
                }
            };
            parsed_rules += 1;

            // Without the operator's flag, nothing private is reachable.
            match matrix.run(case.host, &policy, &closed).await {
                Ended::Connected => panic!("{} under {rule}: connected", case.host),
                Ended::Refused(message) => assert!(
                    message.contains("DestinationIpProhibited") || message.contains("denied"),
                    "{} under {rule}: {message}",
                    case.host
                ),
            }
            assert_eq!(
                matrix.accepted.load(Ordering::SeqCst),
                connected,
                "{} under {rule} reached the listener",
                case.host
            );

            // With loopback opened by the operator, a rule that names the host
            // reaches the listener for loopback destinations only.
            let names_it = policy.allows("http", case.host, Some(port));
            match matrix.run(case.host, &policy, &opened).await {
                Ended::Connected => {
                    assert!(
                        case.loopback && names_it,
                        "{} under {rule}: connected",
                        case.host
                    );
                    connected += 1;
                }
                Ended::Refused(message) => {
                    assert!(
                        !(case.loopback && names_it),
                        "{} under {rule} should connect: {message}",
                        case.host
                    );
                    let expected = if names_it {
                        "DestinationIpProhibited"
                    } else {
                        "denied"
                    };
                    assert!(
                        message.contains(expected),
                        "{} under {rule}: {message}",
                        case.host
                    );
                }
            }
            assert_eq!(matrix.accepted.load(Ordering::SeqCst), connected);
        }
    }
    assert!(
        refused_rules >= CASES.len() * 6,
        "{refused_rules} rules refused"
    );
    assert!(
        parsed_rules >= CASES.len() * 3,
        "{parsed_rules} rules parsed"
    );
    // Every loopback destination connected under its own spelling at least.
    assert!(
        connected >= CASES.iter().filter(|case| case.loopback).count(),
        "{connected} connections"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_address_is_logged_with_the_address() {
    let runtime = runtime(2);
    let http = load(&runtime, "http");
    let (port, accepted) = listener().await;
    let (mut caps, logs) = capabilities();
    caps.egress =
        Arc::new(EgressPolicy::parse([format!("http://internal.example:{port}")]).unwrap());
    caps.network = Arc::new(NetworkPolicy::new().with_resolver(Arc::new(resolver())));
    let input = format!(r#"{{"method": "GET", "url": "http://internal.example:{port}/"}}"#);
    let report = run(
        &runtime,
        &http,
        action("request", &input),
        &caps,
        &Limits::default(),
    )
    .await;
    assert!(
        matches!(report.outcome, Outcome::GuestError { .. }),
        "{:?}",
        report.outcome
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 0);
    let warnings: Vec<String> = logs
        .records()
        .into_iter()
        .filter(|record| record.message.contains("outbound HTTP"))
        .map(|record| record.message)
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("resolves to 127.0.0.1"),
        "{warnings:?}"
    );
    assert!(report.metering.log_bytes >= warnings[0].len() as u64);
}

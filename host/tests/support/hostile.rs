//! The two tenants of the containment scenario: a well-behaved one whose synchronous
//! webhook answers `hello.whoami`, and a hostile one with a flow per hostile guest of
//! `examples/hostile/`, plus the compile bomb it uploads. Shared by the server test and
//! the containment benchmark so that both measure the same attack.

use serde_json::{Value, json};

use super::{Client, webhook_url};

/// The attack of issue 10's server test: each hostile guest with the inputs that would
/// hold 512 MiB of host memory on a host that did not charge it.
pub const ATTACK: [(&str, &str); 3] = [
    ("body-bomb", "{mib: 512}"),
    ("fields-bomb", "{mib: 512}"),
    ("state-flood", "{}"),
];

/// Deploys the well-behaved tenant: `hello.whoami` behind a synchronous webhook.
/// Returns the webhook's URL.
pub async fn deploy_good(client: &Client) -> String {
    client.upload_example("hello").await;
    let definition = r#"
definitionVersion: 1
name: Good
components:
  hello: {version: 1}
flows:
  - key: whoami
    synchronous: true
    steps:
      - key: whoami
        action: hello.whoami
        inputs: {}
"#;
    client.publish("good", definition).await;
    let customer = client.customer("Good customer").await;
    let instance = client.deploy_instance(&customer, "good", json!({})).await;
    webhook_url(&instance, "whoami")
}

/// Deploys the hostile tenant: one flow per hostile guest (keyed by the guest's name
/// with `_` for `-`), each a single `run` step with the given inputs. Returns the
/// instance.
pub async fn deploy_evil(client: &Client, guests: &[(&str, &str)]) -> Value {
    let mut components = String::new();
    let mut flows = String::new();
    for (guest, inputs) in guests {
        client.upload_example(guest).await;
        let key = flow_key(guest);
        components.push_str(&format!("  {guest}: {{version: 1}}\n"));
        flows.push_str(&format!(
            "  - key: {key}\n    steps:\n      - key: run\n        action: {guest}.run\n        inputs: {inputs}\n"
        ));
    }
    let definition =
        format!("definitionVersion: 1\nname: Evil\ncomponents:\n{components}flows:\n{flows}");
    client.publish("evil", &definition).await;
    let customer = client.customer("Evil customer").await;
    client
        .deploy_instance(
            &customer,
            "evil",
            json!({"allowedHosts": ["https://example.com"]}),
        )
        .await
}

/// The flow `deploy_evil` made for `guest`.
pub fn flow_key(guest: &str) -> String {
    guest.replace('-', "_")
}

/// The compile bomb: a real `hello` with a core module Cranelift cannot compile within
/// seconds of CPU.
pub fn compile_bomb() -> Vec<u8> {
    let path = sluice_runtime::guest_build::example("hello").unwrap_or_else(|err| panic!("{err}"));
    let hello = std::fs::read(path).expect("hello.wasm");
    compile_bomb::arm(&hello, compile_bomb::Shape::SERVER_KILLER)
}

//! The customers, components and integrations API end to end: the real `sluice serve`
//! on loopback, two tenants created with `sluice tenant create`, real example guests,
//! and HTTP requests checking status codes, bodies and tenant isolation.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use reqwest::StatusCode;
use serde_json::{Value, json};

/// A running `sluice serve` with two tenants; killed on drop.
struct Server {
    child: Child,
    base: String,
    /// API keys of tenants A and B.
    a: String,
    b: String,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

fn create_tenant(data_dir: &Path, name: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["tenant", "create", name, "--json", "--data-dir"])
        .arg(data_dir)
        .env_remove("RUST_LOG")
        .output()
        .expect("run sluice tenant create");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tenant: Value = serde_json::from_slice(&output.stdout).expect("tenant JSON");
    tenant["apiKey"].as_str().expect("apiKey").to_string()
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = dir.path().join("data");
        let a = create_tenant(&data_dir, "Tenant A");
        let b = create_tenant(&data_dir, "Tenant B");
        let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data_dir)
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn sluice serve");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the listening line");
        let listening: Value = serde_json::from_str(&line)
            .unwrap_or_else(|err| panic!("first line {line:?} is not JSON: {err}"));
        let base = listening["listening"]
            .as_str()
            .expect("listening address")
            .to_string();
        Server {
            child,
            base,
            a,
            b,
            client: reqwest::Client::new(),
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v1{path}", self.base)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let response = request.send().await.expect("send request");
        let status = response.status();
        let text = response.text().await.expect("read body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|err| panic!("body {text:?} is not JSON: {err}"))
        };
        (status, body)
    }

    async fn get(&self, key: &str, path: &str) -> (StatusCode, Value) {
        self.send(self.client.get(self.url(path)).bearer_auth(key))
            .await
    }

    async fn delete(&self, key: &str, path: &str) -> (StatusCode, Value) {
        self.send(self.client.delete(self.url(path)).bearer_auth(key))
            .await
    }

    async fn post_json(&self, key: &str, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(
            self.client
                .post(self.url(path))
                .bearer_auth(key)
                .json(&body),
        )
        .await
    }

    async fn patch_json(&self, key: &str, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(
            self.client
                .patch(self.url(path))
                .bearer_auth(key)
                .json(&body),
        )
        .await
    }

    async fn post_raw(
        &self,
        key: &str,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        self.send(
            self.client
                .post(self.url(path))
                .bearer_auth(key)
                .header("content-type", content_type)
                .body(body),
        )
        .await
    }

    async fn upload(&self, key: &str, bytes: Vec<u8>) -> (StatusCode, Value) {
        self.post_raw(key, "/components", "application/wasm", bytes)
            .await
    }

    async fn upload_example(&self, key: &str, name: &str) -> Value {
        let (status, body) = self.upload(key, guest(name)).await;
        assert!(
            status == StatusCode::CREATED || status == StatusCode::OK,
            "{name}: {status} {body}"
        );
        body
    }
}

impl Server {
    /// Sends `head` (a request without its body) on a new connection and returns all
    /// the server answers before closing it.
    fn raw_exchange(&self, head: &str) -> String {
        use std::io::{Read as _, Write as _};
        let addr = self.base.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .expect("timeout");
        stream
            .write_all(head.as_bytes())
            .expect("write request head");
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        String::from_utf8_lossy(&response).into_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn guest(name: &str) -> Vec<u8> {
    let path = sluice_runtime::guest_build::example(name).unwrap_or_else(|err| panic!("{err}"));
    std::fs::read(path).expect("read guest")
}

/// `bytes` with a custom section appended: a different hash, the same component.
fn with_custom_section(mut bytes: Vec<u8>, note: &str) -> Vec<u8> {
    fn leb128(mut value: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (value & 0x7f) as u8;
            value >>= 7;
            if value == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let name = b"sluice-test";
    let mut payload = Vec::new();
    leb128(name.len(), &mut payload);
    payload.extend_from_slice(name);
    payload.extend_from_slice(note.as_bytes());
    bytes.push(0); // custom section id
    leb128(payload.len(), &mut bytes);
    bytes.extend_from_slice(&payload);
    bytes
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

fn error_message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or_default()
}

const SYNC_YAML: &str = include_str!("../../examples/flows/github-zendesk-sync.yaml");

#[tokio::test]
async fn customers_crud_duplicates_and_tenant_isolation() {
    let server = Server::start();
    let (a, b) = (server.a.as_str(), server.b.as_str());

    // Authentication first.
    let (status, body) = server
        .send(server.client.get(server.url("/customers")))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(error_code(&body), "unauthorized");
    let (status, _) = server.get("sk_wrong", "/customers").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, acme) = server
        .post_json(
            a,
            "/customers",
            json!({"name": "Acme", "externalId": "acme-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{acme}");
    assert_eq!(acme["name"], "Acme");
    assert_eq!(acme["externalId"], "acme-1");
    let created_at = acme["createdAt"].as_str().expect("createdAt");
    assert!(
        created_at.ends_with('Z') && created_at.contains('T'),
        "{created_at}"
    );
    let id = acme["id"].as_str().expect("id").to_string();

    let (status, globex) = server
        .post_json(a, "/customers", json!({"name": "Globex"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(globex["externalId"], Value::Null);

    // Duplicate external id: 409 naming it; another tenant may use the same one.
    let (status, body) = server
        .post_json(
            a,
            "/customers",
            json!({"name": "Acme 2", "externalId": "acme-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(error_message(&body).contains("acme-1"), "{body}");
    let (status, _) = server
        .post_json(
            b,
            "/customers",
            json!({"name": "B's Acme", "externalId": "acme-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    // Malformed input answers in the API's error shape.
    let (status, body) = server
        .post_json(a, "/customers", json!({"name": "  "}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = server
        .post_json(a, "/customers", json!({"name": "x", "externalID": "typo"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(error_message(&body).contains("externalID"), "{body}");

    // List, filter, get.
    let (status, list) = server.get(a, "/customers").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        list["customers"].as_array().map(Vec::len),
        Some(2),
        "{list}"
    );
    let (_, filtered) = server.get(a, "/customers?externalId=acme-1").await;
    assert_eq!(filtered["customers"][0]["id"], id.as_str(), "{filtered}");
    assert_eq!(filtered["customers"].as_array().map(Vec::len), Some(1));
    let (_, none) = server.get(a, "/customers?externalId=nobody").await;
    assert_eq!(none["customers"], json!([]));
    let (status, fetched) = server.get(a, &format!("/customers/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched, acme);

    // Another tenant sees nothing of it.
    let (status, body) = server.get(b, &format!("/customers/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(error_code(&body), "not-found");
    let (status, _) = server
        .patch_json(b, &format!("/customers/{id}"), json!({"name": "Mine"}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = server.delete(b, &format!("/customers/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, b_list) = server.get(b, "/customers").await;
    assert_eq!(b_list["customers"].as_array().map(Vec::len), Some(1));

    // Patch: rename, change and remove the external id, and refuse a duplicate.
    let (status, patched) = server
        .patch_json(
            a,
            &format!("/customers/{id}"),
            json!({"name": "Acme Corp", "externalId": "acme-2"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["name"], "Acme Corp");
    assert_eq!(patched["externalId"], "acme-2");
    let globex_id = globex["id"].as_str().expect("id");
    let (status, body) = server
        .patch_json(
            a,
            &format!("/customers/{globex_id}"),
            json!({"externalId": "acme-2"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, patched) = server
        .patch_json(a, &format!("/customers/{id}"), json!({"externalId": null}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(patched["externalId"], Value::Null);
    assert_eq!(patched["name"], "Acme Corp");

    // Delete.
    let (status, body) = server.delete(a, &format!("/customers/{id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, _) = server.get(a, &format!("/customers/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = server.delete(a, &format!("/customers/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn component_registry_versions_manifests_and_refusals() {
    let server = Server::start();
    let (a, b) = (server.a.as_str(), server.b.as_str());
    let hello = guest("hello");

    let (status, body) = server.upload("sk_wrong", hello.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    // First upload: version 1. The same bytes again: the same version.
    let (status, first) = server.upload(a, hello.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["key"], "hello");
    assert_eq!(first["version"], 1);
    assert_eq!(first["world"], "component");
    assert_eq!(first["size"], hello.len());
    assert_eq!(first["hash"].as_str().map(str::len), Some(64));
    assert_eq!(first["manifest"]["version"], "0.1.0");
    assert!(
        first["manifest"]["actions"]
            .as_array()
            .is_some_and(|actions| actions.contains(&json!("echo"))),
        "{first}"
    );
    let (status, again) = server.upload(a, hello.clone()).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again, first);

    // Other bytes of the same component (a custom section appended): version 2.
    let rebuilt = with_custom_section(hello.clone(), "rebuild");
    let (status, second) = server
        .post_raw(
            a,
            "/components",
            "application/octet-stream",
            rebuilt.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    assert_eq!(second["version"], 2);
    assert_ne!(second["hash"], first["hash"]);
    let (status, same) = server.upload(a, rebuilt).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(same["version"], 2);

    // Another tenant's registry is its own: its first upload is its version 1.
    let (status, theirs) = server.upload(b, hello.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{theirs}");
    assert_eq!(theirs["version"], 1);

    // List, versions, one version, its manifest.
    server.upload_example(a, "text").await;
    let (status, list) = server.get(a, "/components").await;
    assert_eq!(status, StatusCode::OK);
    let keys: Vec<&str> = list["components"]
        .as_array()
        .expect("components")
        .iter()
        .filter_map(|c| c["key"].as_str())
        .collect();
    assert_eq!(keys, ["hello", "text"], "{list}");
    assert_eq!(list["components"][0]["versions"], 2);
    assert_eq!(list["components"][0]["latest"]["version"], 2);
    let (status, versions) = server.get(a, "/components/hello").await;
    assert_eq!(status, StatusCode::OK);
    let numbers: Vec<i64> = versions["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .filter_map(|v| v["version"].as_i64())
        .collect();
    assert_eq!(numbers, [1, 2]);
    let (status, one) = server.get(a, "/components/hello/versions/1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one, first);
    let (status, manifest) = server.get(a, "/components/hello/versions/1/manifest").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(manifest["key"], "hello");
    assert!(manifest["actions"]["echo"].is_object(), "{manifest}");

    // Not found, and another tenant's version is not found either.
    for path in [
        "/components/nope",
        "/components/hello/versions/3",
        "/components/hello/versions/3/manifest",
    ] {
        let (status, body) = server.get(a, path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
    let (status, _) = server.get(b, "/components/hello/versions/2").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = server.get(b, "/components/text").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = server.delete(b, "/components/hello/versions/2").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = server.get(a, "/components/hello/versions/two").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // Refusals, each naming its cause.
    let (status, body) = server.upload(a, b"this is not wasm".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(error_code(&body), "invalid-component");
    assert!(
        error_message(&body).contains("not a WebAssembly binary"),
        "{body}"
    );
    let (status, body) = server.upload(a, guest("forbidden-import")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        error_message(&body).contains("wasi:keyvalue/store"),
        "{body}"
    );
    let (status, body) = server.upload(a, guest("not-sluice")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = server.upload(a, Vec::new()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = server
        .post_raw(a, "/components", "text/plain", hello.clone())
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    // Over the limit (64 MiB by default): refused from its declared length before any
    // of it is sent, as a client that asks `Expect: 100-continue` (curl does for large
    // bodies) sees it.
    let response = server.raw_exchange(&format!(
        "POST /v1/components HTTP/1.1\r\nhost: sluice\r\nauthorization: Bearer {a}\r\n\
         content-type: application/wasm\r\ncontent-length: {}\r\n\
         expect: 100-continue\r\nconnection: close\r\n\r\n",
        (64u64 << 20) + 1
    ));
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(response.contains("\"too-large\""), "{response}");

    // Delete a version nothing pins.
    let (status, body) = server.delete(a, "/components/hello/versions/2").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, _) = server.get(a, "/components/hello/versions/2").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Its number is not given out again: other bytes become version 3.
    let (status, third) = server
        .upload(a, with_custom_section(hello.clone(), "third"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{third}");
    assert_eq!(third["version"], 3);
    // Tenant B's copy of the same bytes was untouched by A's delete.
    let (status, _) = server.get(b, "/components/hello/versions/1").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn integrations_publish_resolve_pins_and_refuse_invalid_definitions() {
    let server = Server::start();
    let (a, b) = (server.a.as_str(), server.b.as_str());
    for name in ["github", "zendesk", "text"] {
        server.upload_example(a, name).await;
    }
    // A second build of `text` that declares the same version: the pin "0.1.0" names
    // the newest registry version declaring it.
    let (status, text2) = server
        .upload(a, with_custom_section(guest("text"), "v2"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{text2}");
    assert_eq!(text2["version"], 2);

    let path = "/integrations/github-zendesk/versions";
    let (status, first) = server
        .post_raw(a, path, "application/yaml", SYNC_YAML.into())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["key"], "github-zendesk");
    assert_eq!(first["version"], 1);
    assert_eq!(first["name"], "GitHub - Zendesk sync");
    assert_eq!(first["pins"]["github"]["version"], 1);
    assert_eq!(first["pins"]["text"]["version"], 2);
    assert_eq!(first["pins"]["text"]["hash"], text2["hash"]);
    // The stored definition records the resolved pins.
    assert_eq!(
        first["definition"]["components"]["text"],
        json!({"version": 2, "hash": text2["hash"]})
    );
    let flows: Vec<(&str, &str)> = first["flows"]
        .as_array()
        .expect("flows")
        .iter()
        .map(|f| {
            (
                f["key"].as_str().unwrap_or_default(),
                f["trigger"]["kind"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        flows,
        [
            ("githubEvents", "component"),
            ("zendeskEvents", "component")
        ],
        "{first}"
    );

    // The same definition again (YAML, then as JSON): the same version.
    let (status, again) = server
        .post_raw(a, path, "text/yaml", SYNC_YAML.into())
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["version"], 1);
    let (status, as_json) = server
        .post_raw(
            a,
            path,
            "application/json",
            first["definition"].to_string().into(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{as_json}");
    assert_eq!(as_json["version"], 1);

    // Pins by registry version, in JSON: a different definition, version 2.
    let mut by_number = first["definition"].clone();
    by_number["components"]["text"] = json!({"version": 1});
    by_number["description"] = json!("pinned to text 1");
    let (status, second) = server.post_json(a, path, by_number).await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    assert_eq!(second["version"], 2);
    assert_eq!(second["pins"]["text"]["version"], 1);

    // Reading back.
    let (status, list) = server.get(a, "/integrations").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["integrations"][0]["key"], "github-zendesk", "{list}");
    assert_eq!(list["integrations"][0]["versions"], 2);
    let (status, versions) = server.get(a, "/integrations/github-zendesk").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(versions["versions"].as_array().map(Vec::len), Some(2));
    let (status, one) = server
        .get(a, "/integrations/github-zendesk/versions/1")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["definition"], first["definition"]);
    for path in [
        "/integrations/github-zendesk",
        "/integrations/github-zendesk/versions/1",
    ] {
        let (status, _) = server.get(b, path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let (status, _) = server
        .get(a, "/integrations/github-zendesk/versions/9")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Tenant B has no components: every pin is reported, with its path.
    let (status, body) = server
        .post_raw(b, path, "application/yaml", SYNC_YAML.into())
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let paths: Vec<&str> = body["error"]["details"]
        .as_array()
        .expect("details")
        .iter()
        .filter_map(|d| d["path"].as_str())
        .collect();
    for pin in ["github", "zendesk", "text"] {
        let expected = format!("components.{pin}.version");
        assert!(paths.contains(&expected.as_str()), "{expected}: {body}");
    }

    // An invalid definition: every problem at once, each with its path.
    let broken = r#"
definitionVersion: 1
name: Broken
components:
  text: {version: 1}
  missing: {version: "1.0.0"}
flows:
  - key: f
    steps:
      - key: a
        action: text.shout
      - key: b
        action: text.replace
        inputs:
          text: {type: reference, value: nowhere.results}
"#;
    let (status, body) = server
        .post_raw(
            a,
            "/integrations/broken/versions",
            "application/yaml",
            broken.into(),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(error_code(&body), "invalid-definition");
    let details = body["error"]["details"].as_array().expect("details");
    let paths: Vec<&str> = details.iter().filter_map(|d| d["path"].as_str()).collect();
    assert!(paths.contains(&"components.missing.version"), "{paths:?}");
    assert!(paths.contains(&"flows[0].steps[0].action"), "{paths:?}");
    assert!(
        paths
            .iter()
            .any(|p| p.starts_with("flows[0].steps[1].inputs")),
        "{paths:?}"
    );
    assert!(
        details
            .iter()
            .all(|d| d["message"].as_str().is_some_and(|m| !m.is_empty()))
    );
    // Syntax errors carry a line.
    let (status, body) = server
        .post_raw(
            a,
            "/integrations/broken/versions",
            "application/yaml",
            b"name: [unclosed\n".to_vec(),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"]["details"][0]["line"].is_u64(), "{body}");
    let (status, body) = server
        .post_raw(
            a,
            "/integrations/broken/versions",
            "application/json",
            b"{".to_vec(),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, _) = server.get(a, "/integrations/broken").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing was stored");
    let (status, body) = server
        .post_raw(
            a,
            "/integrations/bad key/versions",
            "application/yaml",
            SYNC_YAML.into(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = server
        .post_raw(
            a,
            "/integrations/huge/versions",
            "application/yaml",
            vec![b'#'; (1 << 20) + 1],
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");

    // A component version an integration version pins cannot be deleted; one nothing
    // pins can.
    let (status, body) = server.delete(a, "/components/text/versions/2").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        error_message(&body).contains("`github-zendesk` version 1"),
        "{body}"
    );
    let (status, body) = server.delete(a, "/components/text/versions/1").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        error_message(&body).contains("`github-zendesk` version 2"),
        "{body}"
    );
    let extra = server
        .upload(a, with_custom_section(guest("text"), "unpinned"))
        .await
        .1;
    let (status, body) = server
        .delete(
            a,
            &format!("/components/text/versions/{}", extra["version"]),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
}

#[tokio::test]
async fn the_plan_cache_and_registry_load_serve_other_modules() {
    // In process: `integrations::plan` and `registry::load`, as instances and
    // executions call them, including after a restart with the artifact cache kept.
    let dir = tempfile::tempdir().expect("temp dir");
    let config = sluice::config::ServerConfig::new(dir.path(), "127.0.0.1:0".parse().unwrap());
    let state = sluice::app::AppState::open(config.clone())
        .await
        .expect("open");
    let tenant = "tenant-1";
    let tenant_row = state
        .store
        .create_tenant("T", "hash", "sk_x")
        .await
        .expect("tenant");
    let tenant_id = tenant_row.id.as_str();
    for name in ["github", "zendesk", "text"] {
        sluice::registry::upload(&state, tenant_id, guest(name).into())
            .await
            .expect("upload");
    }
    let (row, created) = sluice::integrations::publish(
        &state,
        tenant_id,
        "sync",
        SYNC_YAML,
        sluice_runtime::flow::Format::Yaml,
    )
    .await
    .expect("publish");
    assert!(created);
    let compiled = sluice::integrations::plan(&state, tenant_id, "sync", row.version)
        .await
        .expect("plan");
    assert_eq!(compiled.plan.flow_keys(), ["githubEvents", "zendeskEvents"]);
    assert_eq!(
        compiled.components.keys().collect::<Vec<_>>(),
        ["github", "text", "zendesk"]
    );
    let again = sluice::integrations::plan(&state, tenant_id, "sync", row.version)
        .await
        .expect("plan");
    assert!(std::sync::Arc::ptr_eq(&compiled, &again), "cached");
    let missing = sluice::integrations::plan(&state, tenant, "sync", row.version).await;
    assert_eq!(
        missing.map(|_| ()).map_err(|err| err.status),
        Err(axum::http::StatusCode::NOT_FOUND),
        "another tenant"
    );
    drop((compiled, again, state));

    // A new process: the plan is rebuilt from the store and the artifact cache.
    let state = sluice::app::AppState::open(config.clone())
        .await
        .expect("reopen");
    assert!(state.plans.is_empty());
    let (component, manifest) = sluice::registry::load(&state, tenant_id, "github", 1)
        .await
        .expect("load");
    assert_eq!(manifest.key, "github");
    assert!(
        matches!(
            component.origin(),
            sluice_runtime::LoadOrigin::ArtifactCache { .. }
        ),
        "{:?}",
        component.origin()
    );
    let compiled = sluice::integrations::plan(&state, tenant_id, "sync", 1)
        .await
        .expect("plan after restart");
    assert_eq!(compiled.pins["github"].version, 1);
    assert_eq!(state.plans.len(), 1);
    let err = sluice::registry::load(&state, tenant_id, "github", 7)
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(err.status, axum::http::StatusCode::NOT_FOUND);
    drop((compiled, component, state));

    // Without the artifact cache (a new engine version starts an empty one): the
    // component is recompiled from the bytes in the store.
    std::fs::remove_dir_all(config.artifacts_dir()).expect("remove the artifact cache");
    let state = sluice::app::AppState::open(config).await.expect("reopen");
    let (component, _) = sluice::registry::load(&state, tenant_id, "text", 1)
        .await
        .expect("load without the artifact cache");
    assert!(
        matches!(
            component.origin(),
            sluice_runtime::LoadOrigin::Compiled { .. }
        ),
        "{:?}",
        component.origin()
    );
    sluice::integrations::plan(&state, tenant_id, "sync", 1)
        .await
        .expect("plan without the artifact cache");
}

/// Follows an upload answered `202 Accepted` until its compile ends.
async fn finished_upload(server: &Server, key: &str, location: &str) -> Value {
    let path = location.trim_start_matches("/v1");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    loop {
        let (status, body) = server.get(key, path).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if body["status"] != "compiling" {
            return body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the upload is still compiling: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn upload_async(server: &Server, key: &str, bytes: Vec<u8>) -> (StatusCode, String, Value) {
    let response = server
        .client
        .post(server.url("/components"))
        .bearer_auth(key)
        .header("content-type", "application/wasm")
        .header("prefer", "respond-async")
        .body(bytes)
        .send()
        .await
        .expect("send");
    let status = response.status();
    let location = response
        .headers()
        .get("location")
        .map(|value| value.to_str().expect("ascii location").to_string())
        .unwrap_or_default();
    let body: Value = response.json().await.expect("JSON body");
    (status, location, body)
}

#[tokio::test]
async fn an_upload_compiles_off_the_request_path_and_reports_its_status() {
    let server = Server::start();
    let (a, b) = (&server.a, &server.b);

    // Asked not to wait, the server answers before compiling new bytes.
    let (status, location, body) = upload_async(&server, a, guest("github")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "compiling", "{body}");
    assert_eq!(
        location,
        format!("/v1/component-uploads/{}", body["id"].as_str().unwrap())
    );
    assert_eq!(body["size"], guest("github").len());
    // Only its tenant sees it.
    let (status, _) = server.get(b, location.trim_start_matches("/v1")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let done = finished_upload(&server, a, &location).await;
    assert_eq!(done["status"], "ready", "{done}");
    assert_eq!(done["component"]["key"], "github", "{done}");
    assert_eq!(done["component"]["version"], 1, "{done}");
    assert_eq!(done["component"]["created"], true, "{done}");
    assert!(done["finishedAt"].is_string(), "{done}");
    let url = done["component"]["url"]
        .as_str()
        .unwrap()
        .trim_start_matches("/v1");
    let (status, version) = server.get(a, url).await;
    assert_eq!(status, StatusCode::OK, "{version}");
    assert!(
        version["compile"]["timeUs"].as_i64().unwrap() > 0,
        "{version}"
    );

    // A component that loads but cannot give its manifest fails, with the reason a
    // synchronous upload would have answered.
    let (status, location, body) = upload_async(&server, a, guest("exit-in-start")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let failed = finished_upload(&server, a, &location).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["error"]["code"], "invalid-component", "{failed}");
    assert!(
        failed["error"]["message"]
            .as_str()
            .unwrap()
            .contains("manifest"),
        "{failed}"
    );
    let (status, listing) = server.get(a, "/components").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        listing["components"].as_array().unwrap().len(),
        1,
        "{listing}"
    );

    // What needs no compile is refused at once, asynchronous or not.
    let (status, _, body) = upload_async(&server, a, b"not wasm".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _, body) = upload_async(&server, a, guest("forbidden-import")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = server.get(a, "/component-uploads/no-such-upload").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // Without the preference, a compile that ends within the server's wait is
    // answered as before.
    let (status, body) = server.upload(a, guest("text")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["key"], "text");
}

/// A client that never waits cannot make the host hold more than four of its
/// uploads (with their bytes) at once: the fifth is refused until one has ended.
#[tokio::test]
async fn uploads_in_progress_are_bounded_per_tenant() {
    let server = Server::start();
    let (a, b) = (&server.a, &server.b);
    // Distinct components, each a compile of its own behind the tenant's one slot.
    let mut followed = Vec::new();
    for name in ["github", "zendesk", "text", "http"] {
        let (status, location, body) = upload_async(&server, a, guest(name)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{name}: {body}");
        followed.push(location);
    }
    let (status, _, body) = upload_async(&server, a, guest("sdk-demo")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(error_code(&body), "rate-limited");
    assert!(error_message(&body).contains("4 uploads"), "{body}");
    // Another tenant is not held back.
    let (status, body) = server.upload(b, guest("hello")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for location in &followed {
        let done = finished_upload(&server, a, location).await;
        assert_eq!(done["status"], "ready", "{done}");
    }
    let (status, body) = server.upload(a, guest("sdk-demo")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn an_upload_the_server_did_not_finish_fails_at_the_next_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = sluice::config::ServerConfig::new(dir.path(), "127.0.0.1:0".parse().unwrap());
    let state = sluice::app::AppState::open(config.clone())
        .await
        .expect("open");
    let tenant = state
        .store
        .create_tenant("T", "hash", "sk_x")
        .await
        .expect("tenant");
    let upload = state
        .store
        .create_upload(&tenant.id, 10, "00")
        .await
        .expect("upload");
    drop(state);
    let state = sluice::app::AppState::open(config.clone())
        .await
        .expect("reopen");
    let row = state
        .store
        .component_upload(&tenant.id, &upload.id)
        .await
        .expect("read")
        .expect("kept");
    match row.status {
        sluice::store::uploads::UploadStatus::Failed { code, message } => {
            assert_eq!(code, "upload-interrupted");
            assert!(message.contains("upload the component again"), "{message}");
        }
        other => panic!("expected a failed upload, got {other:?}"),
    }
    // Retention deletes finished uploads past it, and keeps those still compiling.
    let compiling = state
        .store
        .create_upload(&tenant.id, 10, "01")
        .await
        .expect("upload");
    drop(state);
    let mut config = config;
    config.retention = std::time::Duration::ZERO;
    let state = sluice::app::AppState::open(config).await.expect("reopen");
    // Reopening failed `compiling` too; a new one stays.
    let fresh = state
        .store
        .create_upload(&tenant.id, 10, "02")
        .await
        .expect("upload");
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    sluice::retention::sweep(&state).await;
    for gone in [&upload.id, &compiling.id] {
        let row = state
            .store
            .component_upload(&tenant.id, gone)
            .await
            .expect("read");
        assert!(row.is_none(), "{row:?}");
    }
    let kept = state
        .store
        .component_upload(&tenant.id, &fresh.id)
        .await
        .expect("read");
    assert!(kept.is_some());
}

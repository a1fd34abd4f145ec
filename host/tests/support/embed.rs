//! The tenant's backend, as embed tests play it: fixture keys (`fixtures/embed/`), JWTs
//! signed as a tenant signs them, sessions opened over HTTP, and the vendor's page
//! framing the pages. Include it with `#[path = "support/embed.rs"] mod embed;` next
//! to `mod support;`.

#![allow(dead_code)]

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::Client;

pub const A_PRIVATE: &str = include_str!("fixtures/embed/tenant-a.key.pem");
pub const A_PUBLIC: &str = include_str!("fixtures/embed/tenant-a.pub.pem");
pub const A_PUBLIC_PKCS1: &str = include_str!("fixtures/embed/tenant-a.pkcs1.pub.pem");
pub const B_PRIVATE: &str = include_str!("fixtures/embed/tenant-b.key.pem");
pub const B_PUBLIC: &str = include_str!("fixtures/embed/tenant-b.pub.pem");
pub const SMALL_PUBLIC: &str = include_str!("fixtures/embed/small.pub.pem");
pub const EC_PUBLIC: &str = include_str!("fixtures/embed/ec.pub.pem");

/// Unix seconds now.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64)
}

/// The claims of a user `sub` of customer `customer` of tenant `tenant`, issued now,
/// valid ten minutes.
pub fn claims(tenant: &str, customer: &str, sub: &str) -> Value {
    let now = now_secs();
    json!({
        "sub": sub,
        "external_id": sub,
        "name": format!("User {sub}"),
        "organization": tenant,
        "customer": customer,
        "customer_name": format!("Customer {customer}"),
        "iat": now,
        "exp": now + 600,
    })
}

/// `claims` signed RS256 with `private` (PKCS#8 PEM), with `kid` in the header if given.
pub fn sign(claims: &Value, private: &str, kid: Option<&str>) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = kid.map(str::to_string);
    let key = EncodingKey::from_rsa_pem(private.as_bytes()).expect("a fixture private key");
    jsonwebtoken::encode(&header, claims, &key).expect("signing a test token")
}

/// `claims` signed HS256 with `secret`.
pub fn sign_hs256(claims: &Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .expect("signing a test token")
}

/// `claims` with `alg: none` and no signature.
pub fn unsigned(claims: &Value) -> String {
    let b64 =
        |value: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string());
    format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(claims)
    )
}

/// An HTTP client that answers redirects instead of following them.
pub fn browserless() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client")
}

/// Registers `pem` as a signing key of the client's tenant; returns the key.
pub async fn register_key(client: &Client, pem: &str) -> Value {
    client
        .post("/v1/signing-keys", &json!({"publicKeyPem": pem}))
        .await
        .expect(201)
        .body
}

/// Sets the client's tenant's frame ancestors.
pub async fn allow_frames(client: &Client, origins: &[&str]) {
    client
        .put("/v1/embed-settings", &json!({"frameAncestors": origins}))
        .await
        .expect(200);
}

/// Opens `/embed?jwt=<token>` on `server` and returns the answer, not following the
/// redirect.
pub async fn enter(server: &str, token: &str) -> reqwest::Response {
    // A JWT is base64url and dots: nothing to escape in a query.
    browserless()
        .get(format!("{server}/embed?jwt={token}"))
        .send()
        .await
        .expect("GET /embed")
}

/// Opens a session for `token` and returns its base path, `/embed/s/<token>`; panics
/// unless the entry page redirects to one.
pub async fn open_session(server: &str, token: &str) -> String {
    let answer = enter(server, token).await;
    let status = answer.status().as_u16();
    let location = answer
        .headers()
        .get("location")
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    let body = answer.text().await.unwrap_or_default();
    assert_eq!(status, 303, "the entry page did not redirect: {body}");
    let location = location.expect("a Location header");
    assert!(
        location.starts_with("/embed/s/") && location.ends_with('/'),
        "{location}"
    );
    location.trim_end_matches('/').to_string()
}

/// The integration the embed tests publish: one flow calling `hello.whoami`.
pub const HELLO_DEFINITION: &str = r#"
definitionVersion: 1
name: Hello relay
description: Tells who it runs for, on every webhook.
components:
  hello: {version: 1}
flows:
  - key: greet
    steps:
      - key: whoami
        action: hello.whoami
        inputs: {}
"#;

/// Uploads `hello` and publishes [`HELLO_DEFINITION`] as `hello-relay`.
pub async fn publish_hello(client: &Client) {
    client.upload_example("hello").await;
    client.publish("hello-relay", HELLO_DEFINITION).await;
}

/// A loopback HTTP server standing in for the tenant's own web app: its one page
/// embeds the Sluice page `src` in an iframe. Stopped on drop.
pub struct VendorApp {
    /// `http://localhost:<port>`: another origin than Sluice's `http://127.0.0.1:<port>`.
    pub origin: String,
    task: tokio::task::JoinHandle<()>,
}

impl VendorApp {
    pub async fn start(iframe_src: String) -> VendorApp {
        let page = format!(
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>Vendor app</title></head><body><h1>Vendor app</h1>\
             <iframe id=\"sluice\" title=\"Integrations\" src=\"{iframe_src}\" \
             width=\"1200\" height=\"760\"></iframe></body></html>"
        );
        let router = axum::Router::new().route(
            "/",
            axum::routing::get(move || {
                let page = page.clone();
                async move { axum::response::Html(page) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port for the vendor app");
        let port = listener.local_addr().expect("its address").port();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        VendorApp {
            origin: format!("http://localhost:{port}"),
            task,
        }
    }
}

impl Drop for VendorApp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

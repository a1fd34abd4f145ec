//! Fake GitHub and Zendesk services and a fake OAuth 2.0 provider on loopback, for the
//! tests of the example connectors and flows: just enough of each REST API for the
//! GitHub-to-Zendesk sync, in-memory state a test can inspect, and builders of signed
//! webhook deliveries.
//!
//! Each fake checks the bearer token of every request, so a connector that sends the
//! wrong credential gets the service's real 401. The fake GitHub accepts the tokens of
//! a [`TokenRegistry`]: static ones a test registers, and the access tokens the
//! [`FakeOAuth`] provider sharing that registry issued, until they expire or are
//! revoked. The `sluice-fakes` binary starts all three, to try the customer
//! activation (OAuth consent) by hand.

pub mod github;
pub mod oauth;
pub mod scenario;
pub mod tokens;
pub mod zendesk;

use std::io;
use std::net::{Ipv4Addr, SocketAddr};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub use github::FakeGithub;
pub use oauth::{FakeOAuth, OAuthClient};
pub use tokens::TokenRegistry;
pub use zendesk::FakeZendesk;

/// A webhook delivery as the service would send it: headers (lower-cased names) and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl WebhookEvent {
    /// The value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The same delivery with its body replaced (and its signature left stale): a forgery.
    pub fn tampered(mut self, body: &[u8]) -> Self {
        self.body = body.to_vec();
        self
    }
}

/// A running fake: its address and the task serving it (stopped on drop).
struct Server {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Serves `router` on loopback port `port`. Port 0 lets the OS pick a free port,
    /// so tests can run in parallel; a fixed port can be taken, which the
    /// `sluice-fakes` binary reports instead of panicking.
    async fn bind(port: u16, router: Router) -> io::Result<Self> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Server { addr, task })
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The token of an `Authorization: Bearer <token>` header (or GitHub's
/// `token <token>`), if there is one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("token "))
        })
}

/// Whether `headers` carry `token` as `Bearer <token>` or GitHub's `token <token>`.
fn authorized(headers: &HeaderMap, token: &str) -> bool {
    bearer(headers).is_some_and(|given| given == token)
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(serde_json::json!({"message": "Bad credentials"})),
    )
        .into_response()
}

fn not_found(what: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({"message": format!("{what} not found")})),
    )
        .into_response()
}

fn hmac_sha256(secret: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

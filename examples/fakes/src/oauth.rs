//! A fake OAuth 2.0 authorization server on loopback: the authorization code grant
//! with PKCE (S256) behind a plain HTML consent page, refresh tokens with rotation and
//! reuse detection, client credentials and revocation (RFC 6749, 7636, 7009). It
//! records the access tokens it issues in a [`TokenRegistry`], and has knobs that make
//! its token endpoint fail the ways real providers do.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use url::Url;

use crate::{Server, TokenRegistry};

/// How long an authorization code can be redeemed (RFC 6749 section 4.1.2 recommends
/// at most 10 minutes).
const CODE_LIFETIME: Duration = Duration::from_secs(600);

/// The access token lifetime until a test changes it: an hour, as most providers give.
const DEFAULT_TOKEN_LIFETIME: u64 = 3600;

/// A registered client (an "app" at the provider).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthClient {
    pub id: String,
    pub secret: String,
    /// Where the provider may send the browser back; compared exactly, as providers do.
    pub redirect_uris: Vec<String>,
}

impl OAuthClient {
    /// A confidential client with no redirect URI yet.
    pub fn new(id: &str, secret: &str) -> Self {
        OAuthClient {
            id: id.into(),
            secret: secret.into(),
            redirect_uris: Vec::new(),
        }
    }

    /// The same client, also allowed to be redirected to `uri`.
    pub fn redirect_uri(mut self, uri: &str) -> Self {
        self.redirect_uris.push(uri.into());
        self
    }
}

/// The PKCE `code_challenge` of `verifier` with method S256 (RFC 7636 section 4.2):
/// `BASE64URL-NOPAD(SHA256(verifier))`.
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// An authorization code, from consent to redemption.
struct Code {
    client_id: String,
    redirect_uri: String,
    scope: String,
    challenge: String,
    expires_at: Instant,
    used: bool,
    /// The tokens issued for it, revoked if the code is presented again.
    family: Option<usize>,
}

/// The tokens that descend from one grant (one consent, or one client credentials
/// request): rotation keeps a family, and reuse of a rotated refresh token revokes it
/// whole, because either the client or an attacker holds a stolen token.
struct Family {
    client_id: String,
    scope: String,
    access: Vec<String>,
    refresh: Vec<String>,
    revoked: bool,
}

struct Data {
    clients: Vec<OAuthClient>,
    codes: HashMap<String, Code>,
    /// Each refresh token's family, and whether it is the family's current one.
    refresh_tokens: HashMap<String, (usize, bool)>,
    /// Indexed by family id.
    families: Vec<Family>,
    /// Every access token issued, oldest first, with its family.
    access_tokens: Vec<(String, usize)>,
    token_requests: BTreeMap<String, usize>,
    revoke_calls: usize,
    approvals: usize,
    denials: usize,
    // Knobs.
    token_lifetime: u64,
    failures_left: usize,
    html: bool,
    refresh_invalid: bool,
    delay: Duration,
    instance_url: String,
}

struct Shared {
    tokens: TokenRegistry,
    data: Mutex<Data>,
}

impl Shared {
    fn data(&self) -> MutexGuard<'_, Data> {
        self.data.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The fake OAuth 2.0 provider. Endpoints: `GET /authorize` (the consent page),
/// `POST /authorize` (what its buttons submit: `decision=allow` or `deny` with the
/// request's parameters), `POST /token` and `POST /revoke`.
pub struct FakeOAuth {
    server: Server,
    shared: Arc<Shared>,
}

impl FakeOAuth {
    /// Starts the provider with one registered client, recording the access tokens it
    /// issues in `tokens` (share it with [`FakeGithub::start_with_registry`] so those
    /// tokens work there).
    ///
    /// [`FakeGithub::start_with_registry`]: crate::FakeGithub::start_with_registry
    pub async fn start(tokens: &TokenRegistry, client: OAuthClient) -> Self {
        Self::start_on(0, tokens, client)
            .await
            .expect("binding a loopback port")
    }

    /// [`FakeOAuth::start`] on loopback port `port` (0: any free port).
    pub async fn start_on(
        port: u16,
        tokens: &TokenRegistry,
        client: OAuthClient,
    ) -> io::Result<Self> {
        let shared = Arc::new(Shared {
            tokens: tokens.clone(),
            data: Mutex::new(Data {
                clients: vec![client],
                codes: HashMap::new(),
                refresh_tokens: HashMap::new(),
                families: Vec::new(),
                access_tokens: Vec::new(),
                token_requests: BTreeMap::new(),
                revoke_calls: 0,
                approvals: 0,
                denials: 0,
                token_lifetime: DEFAULT_TOKEN_LIFETIME,
                failures_left: 0,
                html: false,
                refresh_invalid: false,
                delay: Duration::ZERO,
                instance_url: String::new(),
            }),
        });
        let router = Router::new()
            .route("/authorize", get(authorize_page).post(authorize_decision))
            .route("/token", post(token))
            .route("/revoke", post(revoke))
            .with_state(Arc::clone(&shared));
        let server = Server::bind(port, router).await?;
        shared.data().instance_url = server.url();
        Ok(FakeOAuth { server, shared })
    }

    /// Base URL, e.g. `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The authorization endpoint (the consent page).
    pub fn authorize_url(&self) -> String {
        format!("{}/authorize", self.url())
    }

    /// The token endpoint.
    pub fn token_url(&self) -> String {
        format!("{}/token", self.url())
    }

    /// The revocation endpoint (RFC 7009).
    pub fn revoke_url(&self) -> String {
        format!("{}/revoke", self.url())
    }

    /// The registry the provider records its access tokens in (a clone sharing its
    /// state).
    pub fn registry(&self) -> TokenRegistry {
        self.shared.tokens.clone()
    }

    /// Registers another client.
    pub fn add_client(&self, client: OAuthClient) {
        self.shared.data().clients.push(client);
    }

    /// Access tokens issued from now on live `seconds` (and say so in `expires_in`);
    /// tokens already issued keep their expiry.
    pub fn set_token_lifetime(&self, seconds: u64) {
        self.shared.data().token_lifetime = seconds;
    }

    /// The next `requests` token requests, whatever they are, answer a bare HTTP 500
    /// (an outage of the provider).
    pub fn fail_next_token_requests(&self, requests: usize) {
        self.shared.data().failures_left = requests;
    }

    /// While on, token requests answer an HTML page with status 200, as a provider
    /// behind a login wall or a captive portal does.
    pub fn set_token_html(&self, on: bool) {
        self.shared.data().html = on;
    }

    /// While on, every refresh answers `invalid_grant`, as when the user revoked the
    /// app at the provider; the tokens themselves are left as they are, so turning it
    /// off makes refreshes work again.
    pub fn set_refresh_invalid_grant(&self, on: bool) {
        self.shared.data().refresh_invalid = on;
    }

    /// Token requests wait `delay` before being handled, so that concurrent requests
    /// (two refreshes of one token, say) overlap.
    pub fn set_token_delay(&self, delay: Duration) {
        self.shared.data().delay = delay;
    }

    /// The `instance_url` of token responses (by default the provider's own URL), a
    /// non-secret field a host passes on, like Salesforce's.
    pub fn set_instance_url(&self, url: &str) {
        self.shared.data().instance_url = url.into();
    }

    /// Revokes every token issued so far, as when the user removes the app at the
    /// provider.
    pub fn revoke_all(&self) {
        let mut data = self.shared.data();
        for family in 0..data.families.len() {
            revoke_family(&mut data, &self.shared.tokens, family);
        }
    }

    /// How many token requests had grant type `grant_type` (failed ones included; an
    /// unreadable request or one without a grant type counts as `""`).
    pub fn token_requests(&self, grant_type: &str) -> usize {
        self.shared
            .data()
            .token_requests
            .get(grant_type)
            .copied()
            .unwrap_or(0)
    }

    /// How many token requests had grant type `refresh_token`.
    pub fn refresh_requests(&self) -> usize {
        self.token_requests("refresh_token")
    }

    /// How many requests reached the revocation endpoint.
    pub fn revoke_calls(&self) -> usize {
        self.shared.data().revoke_calls
    }

    /// How many times the user allowed access on the consent page.
    pub fn approvals(&self) -> usize {
        self.shared.data().approvals
    }

    /// How many times the user denied access on the consent page.
    pub fn denials(&self) -> usize {
        self.shared.data().denials
    }

    /// Every access token issued, oldest first.
    pub fn issued_access_tokens(&self) -> Vec<String> {
        let data = self.shared.data();
        data.access_tokens
            .iter()
            .map(|(token, _)| token.clone())
            .collect()
    }

    /// Every refresh token issued (rotated ones included), in no particular order.
    pub fn issued_refresh_tokens(&self) -> Vec<String> {
        self.shared.data().refresh_tokens.keys().cloned().collect()
    }

    /// The issued access tokens still valid (neither expired nor revoked), oldest first.
    pub fn valid_access_tokens(&self) -> Vec<String> {
        self.issued_access_tokens()
            .into_iter()
            .filter(|token| self.shared.tokens.is_valid(token))
            .collect()
    }

    /// Whether `token` is a refresh token that a refresh would accept now.
    pub fn refresh_token_active(&self, token: &str) -> bool {
        let data = self.shared.data();
        data.refresh_tokens
            .get(token)
            .is_some_and(|&(family, current)| current && !data.families[family].revoked)
    }
}

type SharedState = State<Arc<Shared>>;

/// A fresh unguessable token with a prefix saying what it is.
fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// Request parameters. Each may be given once (RFC 6749 section 3.1), and one sent
/// without a value counts as omitted (same section).
struct Params(HashMap<String, String>);

impl Params {
    /// Fails with the name of a parameter given twice.
    fn from_pairs(pairs: impl Iterator<Item = (String, String)>) -> Result<Self, String> {
        let mut params = HashMap::new();
        for (name, value) in pairs {
            if params.insert(name.clone(), value).is_some() {
                return Err(name);
            }
        }
        Ok(Params(params))
    }

    fn form(bytes: &[u8]) -> Result<Self, String> {
        Self::from_pairs(
            url::form_urlencoded::parse(bytes).map(|(name, value)| (name.into(), value.into())),
        )
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|value| !value.is_empty())
    }
}

/// An RFC 6749 section 5.2 error of the token or revocation endpoint.
#[derive(Debug)]
struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
}

impl OAuthError {
    fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        OAuthError {
            status,
            error,
            description: description.into(),
        }
    }

    fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }

    fn invalid_client(description: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_client", description)
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.error, "error_description": self.description});
        let mut response = (self.status, no_store(), axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 6749 section 5.2: a 401 names the scheme the client may use.
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Basic realm=\"fake-oauth\""),
            );
        }
        response
    }
}

/// Responses carrying tokens must not be cached (RFC 6749 section 5.1).
fn no_store() -> [(header::HeaderName, &'static str); 2] {
    [
        (header::CACHE_CONTROL, "no-store"),
        (header::PRAGMA, "no-cache"),
    ]
}

/// The parameters of a token or revocation request: a form (RFC 6749) or, as some
/// providers also accept, a JSON object.
fn body_params(headers: &HeaderMap, body: &[u8]) -> Result<Params, OAuthError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("application/x-www-form-urlencoded");
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let twice = |name: String| OAuthError::invalid_request(format!("{name} is given twice"));
    match media_type.as_str() {
        "application/x-www-form-urlencoded" => Params::form(body).map_err(twice),
        "application/json" => {
            let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(body) else {
                return Err(OAuthError::invalid_request("the body is not a JSON object"));
            };
            let mut pairs = Vec::new();
            for (name, value) in object {
                let value = match value {
                    Value::String(text) => text,
                    Value::Null => continue,
                    Value::Number(number) => number.to_string(),
                    Value::Bool(flag) => flag.to_string(),
                    _ => {
                        return Err(OAuthError::invalid_request(format!(
                            "{name} must be a string"
                        )));
                    }
                };
                pairs.push((name, value));
            }
            Params::from_pairs(pairs.into_iter()).map_err(twice)
        }
        other => Err(OAuthError::invalid_request(format!(
            "unsupported content type {other}: send application/x-www-form-urlencoded"
        ))),
    }
}

/// Decodes `application/x-www-form-urlencoded` text (`+` is a space, `%XX` a byte).
fn form_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => decoded.push(b' '),
            b'%' => {
                let hex = bytes.get(index + 1..index + 3)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                decoded.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                index += 2;
            }
            byte => decoded.push(byte),
        }
        index += 1;
    }
    String::from_utf8(decoded).ok()
}

/// Authenticates the client of a token or revocation request, by HTTP Basic or by
/// `client_id` and `client_secret` in the body (RFC 6749 section 2.3.1), and returns
/// its id.
fn authenticate(data: &Data, headers: &HeaderMap, params: &Params) -> Result<String, OAuthError> {
    let basic = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(value) => {
            let credentials = value
                .to_str()
                .ok()
                .and_then(|value| {
                    let (scheme, encoded) = value.split_once(' ')?;
                    scheme.eq_ignore_ascii_case("basic").then_some(encoded)
                })
                .and_then(|encoded| STANDARD.decode(encoded.trim()).ok())
                .and_then(|decoded| String::from_utf8(decoded).ok())
                .and_then(|decoded| {
                    let (id, secret) = decoded.split_once(':')?;
                    Some((id.to_string(), secret.to_string()))
                });
            Some(credentials.ok_or_else(|| {
                OAuthError::invalid_client("the Authorization header is not valid HTTP Basic")
            })?)
        }
    };
    let known = |id: &str, secret: &str| {
        data.clients
            .iter()
            .find(|client| client.id == id && client.secret == secret)
            .map(|client| client.id.clone())
    };
    let wrong = || OAuthError::invalid_client("unknown client or wrong client secret");
    match (basic, params.get("client_secret")) {
        (Some(_), Some(_)) => Err(OAuthError::invalid_request(
            "the client authenticated twice (Authorization header and client_secret); \
             use one method",
        )),
        (Some((id, secret)), None) => {
            // RFC 6749 section 2.3.1 form-encodes id and secret before Base64; many
            // clients skip that, and providers accept both spellings.
            let client = known(&id, &secret)
                .or_else(|| known(&form_decode(&id)?, &form_decode(&secret)?))
                .ok_or_else(wrong)?;
            match params.get("client_id") {
                Some(body_id) if body_id != client => Err(OAuthError::invalid_client(
                    "client_id in the body differs from the Authorization header",
                )),
                _ => Ok(client),
            }
        }
        (None, Some(secret)) => {
            let id = params.get("client_id").ok_or_else(wrong)?;
            known(id, secret).ok_or_else(wrong)
        }
        (None, None) => Err(OAuthError::invalid_client(
            "client authentication is required",
        )),
    }
}

/// A new family of tokens for `client_id`.
fn new_family(data: &mut Data, client_id: &str, scope: &str) -> usize {
    data.families.push(Family {
        client_id: client_id.into(),
        scope: scope.into(),
        access: Vec::new(),
        refresh: Vec::new(),
        revoked: false,
    });
    data.families.len() - 1
}

fn revoke_family(data: &mut Data, tokens: &TokenRegistry, family: usize) {
    let family = &mut data.families[family];
    family.revoked = true;
    for token in &family.access {
        tokens.revoke(token);
    }
    for token in &family.refresh {
        if let Some((_, current)) = data.refresh_tokens.get_mut(token) {
            *current = false;
        }
    }
}

/// Issues an access token (and a refresh token if `refresh`) in `family`: the body of
/// a successful token response.
fn issue(
    data: &mut Data,
    tokens: &TokenRegistry,
    family: usize,
    scope: &str,
    refresh: bool,
) -> Value {
    let access = random_token("fake-at-");
    tokens.issue(&access, Duration::from_secs(data.token_lifetime));
    data.access_tokens.push((access.clone(), family));
    data.families[family].access.push(access.clone());
    let mut body = json!({
        "access_token": access,
        "token_type": "bearer",
        "expires_in": data.token_lifetime,
        "scope": scope,
        "instance_url": data.instance_url,
    });
    if refresh {
        let token = random_token("fake-rt-");
        data.refresh_tokens.insert(token.clone(), (family, true));
        data.families[family].refresh.push(token.clone());
        body["refresh_token"] = json!(token);
    }
    body
}

/// Whether `verifier` is a PKCE code verifier: 43 to 128 unreserved characters
/// (RFC 7636 section 4.1).
fn valid_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"-._~".contains(&byte))
}

/// `POST /token`: counts the request, applies the knobs, then grants.
async fn token(State(shared): SharedState, headers: HeaderMap, body: Bytes) -> Response {
    let params = body_params(&headers, &body);
    let (delay, fail, html) = {
        let mut data = shared.data();
        let grant_type = params
            .as_ref()
            .ok()
            .and_then(|params| params.get("grant_type"))
            .unwrap_or_default()
            .to_string();
        *data.token_requests.entry(grant_type).or_default() += 1;
        let fail = data.failures_left > 0;
        data.failures_left = data.failures_left.saturating_sub(1);
        (data.delay, fail, data.html)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if fail {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "Internal Server Error",
        )
            .into_response();
    }
    if html {
        return Html(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>Sign in</title></head><body><main><h1>Sign in</h1>\
             <p>Your session has expired. Please sign in again.</p></main></body></html>\n",
        )
        .into_response();
    }
    match params.and_then(|params| grant(&shared, &headers, &params)) {
        Ok(body) => (no_store(), axum::Json(body)).into_response(),
        Err(err) => err.into_response(),
    }
}

fn grant(shared: &Shared, headers: &HeaderMap, params: &Params) -> Result<Value, OAuthError> {
    let mut data = shared.data();
    let client = authenticate(&data, headers, params)?;
    match params.get("grant_type") {
        Some("authorization_code") => {
            authorization_code(&mut data, &shared.tokens, &client, params)
        }
        Some("refresh_token") => refresh(&mut data, &shared.tokens, &client, params),
        Some("client_credentials") => {
            let scope = params.get("scope").unwrap_or_default();
            let family = new_family(&mut data, &client, scope);
            // RFC 6749 section 4.4.3: no refresh token for client credentials.
            Ok(issue(&mut data, &shared.tokens, family, scope, false))
        }
        Some(other) => Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            format!("grant type {other} is not supported"),
        )),
        None => Err(OAuthError::invalid_request("grant_type is required")),
    }
}

fn authorization_code(
    data: &mut Data,
    tokens: &TokenRegistry,
    client: &str,
    params: &Params,
) -> Result<Value, OAuthError> {
    let code = params
        .get("code")
        .ok_or_else(|| OAuthError::invalid_request("code is required"))?;
    let Some(grant) = data.codes.get_mut(code) else {
        return Err(OAuthError::invalid_grant("unknown authorization code"));
    };
    if grant.client_id != client {
        return Err(OAuthError::invalid_grant(
            "the authorization code was issued to another client",
        ));
    }
    if grant.used {
        // RFC 6749 section 4.1.2: a code presented twice revokes what it granted.
        if let Some(family) = grant.family {
            revoke_family(data, tokens, family);
        }
        return Err(OAuthError::invalid_grant(
            "the authorization code was already used; the tokens issued for it are revoked",
        ));
    }
    // Any redemption attempt uses the code up, as most providers do.
    grant.used = true;
    if Instant::now() >= grant.expires_at {
        return Err(OAuthError::invalid_grant("the authorization code expired"));
    }
    if params.get("redirect_uri") != Some(grant.redirect_uri.as_str()) {
        return Err(OAuthError::invalid_grant(
            "redirect_uri differs from the authorization request's",
        ));
    }
    let Some(verifier) = params.get("code_verifier") else {
        return Err(OAuthError::invalid_grant(
            "code_verifier is required (PKCE)",
        ));
    };
    if !valid_verifier(verifier) {
        return Err(OAuthError::invalid_grant(
            "code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~",
        ));
    }
    if pkce_challenge(verifier) != grant.challenge {
        return Err(OAuthError::invalid_grant(
            "code_verifier does not match the code_challenge",
        ));
    }
    let scope = grant.scope.clone();
    let family = new_family(data, client, &scope);
    if let Some(grant) = data.codes.get_mut(code) {
        grant.family = Some(family);
    }
    Ok(issue(data, tokens, family, &scope, true))
}

fn refresh(
    data: &mut Data,
    tokens: &TokenRegistry,
    client: &str,
    params: &Params,
) -> Result<Value, OAuthError> {
    if data.refresh_invalid {
        return Err(OAuthError::invalid_grant(
            "the refresh token is invalid, expired or revoked",
        ));
    }
    let token = params
        .get("refresh_token")
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
    let Some(&(family, current)) = data.refresh_tokens.get(token) else {
        return Err(OAuthError::invalid_grant("unknown refresh token"));
    };
    if data.families[family].client_id != client {
        return Err(OAuthError::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    if data.families[family].revoked {
        return Err(OAuthError::invalid_grant("the refresh token was revoked"));
    }
    if !current {
        // A rotated token came back: it leaked, or the client lost a race. Either
        // way the grant is no longer trusted (OAuth 2.0 Security BCP, section 4.14).
        revoke_family(data, tokens, family);
        return Err(OAuthError::invalid_grant(
            "the refresh token was already used; every token of this grant is revoked",
        ));
    }
    let granted = data.families[family].scope.clone();
    let scope = match params.get("scope") {
        None => granted,
        Some(requested) => {
            // A refresh may narrow the scope, never widen it (RFC 6749 section 6).
            let allowed: Vec<&str> = granted.split(' ').collect();
            if let Some(extra) = requested
                .split(' ')
                .find(|scope| !scope.is_empty() && !allowed.contains(scope))
            {
                return Err(OAuthError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    format!("scope {extra} was not granted"),
                ));
            }
            requested.to_string()
        }
    };
    data.refresh_tokens
        .insert(token.to_string(), (family, false));
    Ok(issue(data, tokens, family, &scope, true))
}

/// `POST /revoke` (RFC 7009): revokes the token's whole family. Unknown tokens are
/// not an error (section 2.2).
async fn revoke(State(shared): SharedState, headers: HeaderMap, body: Bytes) -> Response {
    shared.data().revoke_calls += 1;
    let result = body_params(&headers, &body).and_then(|params| {
        let mut data = shared.data();
        let client = authenticate(&data, &headers, &params)?;
        let token = params
            .get("token")
            .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
        let family = data
            .access_tokens
            .iter()
            .find(|(access, _)| access == token)
            .map(|&(_, family)| family)
            .or_else(|| data.refresh_tokens.get(token).map(|&(family, _)| family));
        if let Some(family) = family {
            if data.families[family].client_id != client {
                return Err(OAuthError::invalid_request(
                    "the token was issued to another client",
                ));
            }
            revoke_family(&mut data, &shared.tokens, family);
        }
        Ok(())
    });
    match result {
        Ok(()) => (StatusCode::OK, no_store()).into_response(),
        Err(err) => err.into_response(),
    }
}

/// A checked authorization request.
struct AuthRequest {
    client_id: String,
    /// As registered (and given), since the token request must repeat it exactly.
    redirect: String,
    redirect_uri: Url,
    scope: String,
    state: Option<String>,
    challenge: String,
}

/// Why an authorization request is refused.
enum AuthError {
    /// Shown to the user: the client or its redirect URI cannot be trusted, so the
    /// browser must not be sent there (RFC 6749 section 4.1.2.1).
    Page(String),
    /// Sent back to the client's redirect URI.
    Redirect(Box<Refusal>),
}

/// An error sent back to the client's redirect URI (RFC 6749 section 4.1.2.1).
struct Refusal {
    redirect_uri: Url,
    state: Option<String>,
    error: &'static str,
    description: String,
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        match self {
            AuthError::Page(message) => (
                StatusCode::BAD_REQUEST,
                page(
                    "Authorization error",
                    &format!(
                        "<h1>Authorization error</h1>\n<p>{}</p>\n",
                        escape(&message)
                    ),
                ),
            )
                .into_response(),
            AuthError::Redirect(refusal) => redirect(
                refusal.redirect_uri,
                &[
                    ("error", refusal.error),
                    ("error_description", &refusal.description),
                ],
                refusal.state.as_deref(),
            ),
        }
    }
}

/// A 302 to `uri` with `params` and `state` added to its query.
fn redirect(mut uri: Url, params: &[(&str, &str)], state: Option<&str>) -> Response {
    {
        let mut query = uri.query_pairs_mut();
        for (name, value) in params {
            query.append_pair(name, value);
        }
        if let Some(state) = state {
            query.append_pair("state", state);
        }
    }
    (StatusCode::FOUND, [(header::LOCATION, uri.to_string())]).into_response()
}

/// Checks an authorization request: first the client and its redirect URI (refused
/// with a page), then the rest (refused at the redirect URI).
fn check_authorization(data: &Data, params: &Params) -> Result<AuthRequest, AuthError> {
    let client_id = params
        .get("client_id")
        .ok_or_else(|| AuthError::Page("The request names no client (client_id).".into()))?;
    let client = data
        .clients
        .iter()
        .find(|client| client.id == client_id)
        .ok_or_else(|| AuthError::Page(format!("No client is registered as {client_id}.")))?;
    let redirect = params
        .get("redirect_uri")
        .ok_or_else(|| AuthError::Page("The request has no redirect_uri.".into()))?;
    if !client.redirect_uris.iter().any(|uri| uri == redirect) {
        return Err(AuthError::Page(format!(
            "The redirect URI {redirect} is not registered for client {client_id}."
        )));
    }
    let redirect_uri = Url::parse(redirect).map_err(|_| {
        AuthError::Page(format!(
            "The registered redirect URI {redirect} is not a URL."
        ))
    })?;
    let state = params.get("state").map(str::to_string);
    let refuse = |error, description: &str| {
        AuthError::Redirect(Box::new(Refusal {
            redirect_uri: redirect_uri.clone(),
            state: state.clone(),
            error,
            description: description.into(),
        }))
    };
    match params.get("response_type") {
        Some("code") => {}
        Some(_) => {
            return Err(refuse(
                "unsupported_response_type",
                "only response_type=code is supported",
            ));
        }
        None => return Err(refuse("invalid_request", "response_type is required")),
    }
    let Some(challenge) = params.get("code_challenge") else {
        return Err(refuse(
            "invalid_request",
            "code_challenge is required (PKCE)",
        ));
    };
    if params.get("code_challenge_method") != Some("S256") {
        return Err(refuse(
            "invalid_request",
            "code_challenge_method must be S256",
        ));
    }
    // An S256 challenge is the unpadded BASE64URL of 32 bytes: 43 characters.
    if challenge.len() != 43
        || !challenge
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
    {
        return Err(refuse(
            "invalid_request",
            "code_challenge is not a BASE64URL SHA-256",
        ));
    }
    Ok(AuthRequest {
        client_id: client_id.into(),
        redirect: redirect.into(),
        redirect_uri,
        scope: params.get("scope").unwrap_or_default().into(),
        state,
        challenge: challenge.into(),
    })
}

/// The page's parameters twice over are an error the user sees.
fn duplicate(name: String) -> AuthError {
    AuthError::Page(format!("The parameter {name} is given more than once."))
}

/// `GET /authorize`: the consent page.
async fn authorize_page(State(shared): SharedState, RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    let request = Params::form(query.as_bytes())
        .map_err(duplicate)
        .and_then(|params| check_authorization(&shared.data(), &params));
    let request = match request {
        Ok(request) => request,
        Err(err) => return err.into_response(),
    };
    let scopes: Vec<&str> = request
        .scope
        .split(' ')
        .filter(|scope| !scope.is_empty())
        .collect();
    let scopes = if scopes.is_empty() {
        "<p>It asks for no particular permission.</p>\n".to_string()
    } else {
        let items: String = scopes
            .iter()
            .map(|scope| format!("<li><code>{}</code></li>\n", escape(scope)))
            .collect();
        format!("<p>It asks for these permissions:</p>\n<ul>\n{items}</ul>\n")
    };
    let hidden: String = [
        ("response_type", "code"),
        ("client_id", request.client_id.as_str()),
        ("redirect_uri", request.redirect.as_str()),
        ("scope", request.scope.as_str()),
        ("state", request.state.as_deref().unwrap_or_default()),
        ("code_challenge", request.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]
    .iter()
    .map(|(name, value)| {
        format!(
            "<input type=\"hidden\" name=\"{name}\" value=\"{}\">\n",
            escape(value)
        )
    })
    .collect();
    let client = escape(&request.client_id);
    let body = format!(
        "<h1>Authorize {client}</h1>\n\
         <p>The application <strong>{client}</strong> wants to access your account.</p>\n\
         {scopes}\
         <p>Afterwards you go back to <code>{}</code>.</p>\n\
         <form method=\"post\" action=\"/authorize\">\n\
         {hidden}\
         <button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button>\n\
         <button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button>\n\
         </form>\n",
        escape(&request.redirect),
    );
    let mut response = page(&format!("Authorize {client}"), &body).into_response();
    // Consent must not be clickable inside someone else's frame.
    response.headers_mut().insert(
        header::X_FRAME_OPTIONS,
        header::HeaderValue::from_static("DENY"),
    );
    response
}

/// `POST /authorize`: the user's decision on the consent page, with the request's
/// parameters, checked again since the form came back through the browser.
async fn authorize_decision(State(shared): SharedState, body: Bytes) -> Response {
    let params = match Params::form(&body) {
        Ok(params) => params,
        Err(name) => return duplicate(name).into_response(),
    };
    let mut data = shared.data();
    let request = match check_authorization(&data, &params) {
        Ok(request) => request,
        Err(err) => return err.into_response(),
    };
    match params.get("decision") {
        Some("allow") => {
            let code = random_token("fake-code-");
            data.codes.insert(
                code.clone(),
                Code {
                    client_id: request.client_id,
                    redirect_uri: request.redirect,
                    scope: request.scope,
                    challenge: request.challenge,
                    expires_at: Instant::now() + CODE_LIFETIME,
                    used: false,
                    family: None,
                },
            );
            data.approvals += 1;
            redirect(
                request.redirect_uri,
                &[("code", &code)],
                request.state.as_deref(),
            )
        }
        Some("deny") => {
            data.denials += 1;
            redirect(
                request.redirect_uri,
                &[
                    ("error", "access_denied"),
                    ("error_description", "the user denied access"),
                ],
                request.state.as_deref(),
            )
        }
        _ => AuthError::Page("The decision must be allow or deny.".into()).into_response(),
    }
}

/// A complete HTML page.
fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title} - Fake OAuth</title>\n</head>\n<body>\n<main>\n{body}</main>\n\
         </body>\n</html>\n"
    ))
}

/// `text` safe inside HTML text and double-quoted attribute values.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for char in text.chars() {
        match char {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::{escape, form_decode, pkce_challenge, valid_verifier};

    #[test]
    fn challenge_matches_rfc_7636_appendix_b() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert!(valid_verifier(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        ));
        assert!(!valid_verifier("short"));
        assert!(!valid_verifier(&"a/".repeat(30)));
    }

    #[test]
    fn form_decoding_and_escaping() {
        assert_eq!(form_decode("a%3Ab+c").as_deref(), Some("a:b c"));
        assert_eq!(form_decode("plain").as_deref(), Some("plain"));
        assert_eq!(form_decode("bad%zz"), None);
        assert_eq!(form_decode("cut%4"), None);
        assert_eq!(form_decode("%ff"), None, "not UTF-8");
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}

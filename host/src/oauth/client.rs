//! Token requests to a provider with the `oauth2` crate: the code exchange (with the
//! PKCE verifier), refresh, client credentials and revocation. Every request goes
//! through the runtime's policy-checked `fetch` (the operator's network policy,
//! timeouts, a capped body, no redirects), re-encoded as JSON for providers that
//! want it.

use std::collections::BTreeMap;
use std::sync::Arc;

use oauth2::basic::{
    BasicErrorResponse, BasicErrorResponseType, BasicRevocationErrorResponse,
    BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, ExtraTokenFields, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, RefreshToken, RequestTokenError, RevocationUrl, Scope, StandardRevocableToken,
    StandardTokenResponse, TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sluice_runtime::{FetchError, NetworkPolicy};

use super::OAuthError;
use super::grant::Grant;
use super::settings::OAuthSettings;

/// Longest token response read (they are a few hundred bytes).
const MAX_TOKEN_RESPONSE: usize = 64 * 1024;

/// Token response fields beyond RFC 6749's, kept when not secret (Salesforce's
/// `instance_url`, Slack's team).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExtraFields {
    #[serde(flatten)]
    pub fields: BTreeMap<String, Value>,
}

impl ExtraTokenFields for ExtraFields {}

type Token = StandardTokenResponse<ExtraFields, BasicTokenType>;

type Client = oauth2::Client<
    BasicErrorResponse,
    Token,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointMaybeSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointSet,
>;

fn url_error(what: &str) -> impl Fn(url::ParseError) -> OAuthError + '_ {
    move |err| OAuthError::Settings(format!("the {what} URL is not valid: {err}"))
}

/// A client for `settings`, sending token requests to `token_url`.
fn client(
    settings: &OAuthSettings,
    token_url: &str,
    redirect_uri: Option<&str>,
) -> Result<Client, OAuthError> {
    let auth_url = settings
        .authorize_url
        .as_deref()
        .map(|url| AuthUrl::new(url.to_string()).map_err(url_error("authorize")))
        .transpose()?;
    let revoke_url = settings
        .revoke_url
        .as_deref()
        .map(|url| RevocationUrl::new(url.to_string()).map_err(url_error("revoke")))
        .transpose()?;
    let mut client = oauth2::Client::new(ClientId::new(settings.client_id.clone()))
        .set_auth_uri_option(auth_url)
        .set_revocation_url_option(revoke_url)
        .set_token_uri(TokenUrl::new(token_url.to_string()).map_err(url_error("token"))?)
        .set_auth_type(if settings.basic_auth {
            AuthType::BasicAuth
        } else {
            AuthType::RequestBody
        });
    if let Some(secret) = &settings.client_secret {
        client = client.set_client_secret(ClientSecret::new(secret.clone()));
    }
    if let Some(redirect) = redirect_uri {
        client = client.set_redirect_uri(
            RedirectUrl::new(redirect.to_string()).map_err(url_error("redirect"))?,
        );
    }
    Ok(client)
}

/// The HTTP function the `oauth2` crate calls: our `fetch`, with the form body turned
/// into a JSON object when the provider wants JSON.
fn http(
    network: Arc<NetworkPolicy>,
    json_body: bool,
) -> impl Fn(
    oauth2::HttpRequest,
) -> std::pin::Pin<Box<dyn Future<Output = Result<oauth2::HttpResponse, FetchError>> + Send>> {
    move |mut request| {
        let network = Arc::clone(&network);
        Box::pin(async move {
            if json_body && !request.body().is_empty() {
                let object: serde_json::Map<String, Value> =
                    url::form_urlencoded::parse(request.body())
                        .map(|(name, value)| (name.into_owned(), Value::String(value.into_owned())))
                        .collect();
                *request.body_mut() = Value::Object(object).to_string().into_bytes();
                request.headers_mut().insert(
                    axum::http::header::CONTENT_TYPE,
                    axum::http::HeaderValue::from_static("application/json"),
                );
            }
            sluice_runtime::fetch(&network, request, MAX_TOKEN_RESPONSE).await
        })
    }
}

/// What a provider's refusal or a failed request means for the connection.
fn token_error(err: RequestTokenError<FetchError, BasicErrorResponse>) -> OAuthError {
    match err {
        RequestTokenError::ServerResponse(response) => {
            let code = response.error().as_ref().to_string();
            let description = response
                .error_description()
                .map(|text| format!(": {text}"))
                .unwrap_or_default();
            let refused = matches!(
                response.error(),
                BasicErrorResponseType::InvalidGrant
                    | BasicErrorResponseType::InvalidClient
                    | BasicErrorResponseType::UnauthorizedClient
                    | BasicErrorResponseType::UnsupportedGrantType
                    | BasicErrorResponseType::InvalidScope
            );
            let message = format!("the provider refused: {code}{description}");
            if refused {
                OAuthError::Refused(message)
            } else {
                OAuthError::Provider(message)
            }
        }
        RequestTokenError::Request(FetchError::Refused(host)) => OAuthError::Provider(format!(
            "the operator's network policy refuses the token endpoint's address ({host})"
        )),
        RequestTokenError::Request(err) => {
            OAuthError::Provider(format!("the token request failed: {err}"))
        }
        RequestTokenError::Parse(_, body) => OAuthError::Provider(format!(
            "the token endpoint answered something that is not a token response ({} bytes{})",
            body.len(),
            if body.trim_ascii_start().starts_with(b"<") {
                ", HTML"
            } else {
                ""
            }
        )),
        // The crate checks the content type before parsing: an HTML page lands here.
        RequestTokenError::Other(message) if message.contains("Content-Type") => {
            OAuthError::Provider(format!(
                "the token endpoint answered something that is not a token response ({message})"
            ))
        }
        RequestTokenError::Other(message) => {
            OAuthError::Provider(format!("the token endpoint answered an error: {message}"))
        }
    }
}

fn grant_of(settings: &OAuthSettings, token: Token, previous: Option<&Grant>) -> Grant {
    let now = crate::store::now_ms();
    let expires_at_ms = token.expires_in().map(|lifetime| {
        now.saturating_add(i64::try_from(lifetime.as_millis()).unwrap_or(i64::MAX))
    });
    let scopes = token
        .scopes()
        .map(|scopes| scopes.iter().map(|scope| scope.to_string()).collect())
        .unwrap_or_else(|| {
            settings
                .scopes
                .split_whitespace()
                .map(str::to_string)
                .collect()
        });
    Grant {
        settings: settings.clone(),
        access_token: token.access_token().secret().clone(),
        // A provider that does not rotate answers a refresh without a new refresh
        // token: the old one stays good.
        refresh_token: token
            .refresh_token()
            .map(|token| token.secret().clone())
            .or_else(|| previous.and_then(|grant| grant.refresh_token.clone())),
        token_type: token.token_type().as_ref().to_string(),
        expires_at_ms,
        scopes,
        extra: super::grant::public_fields(&token.extra_fields().fields),
        obtained_ms: now,
    }
}

/// The authorize URL to send the customer to, and the PKCE verifier to keep (empty
/// without PKCE).
pub fn authorize_url(
    settings: &OAuthSettings,
    redirect_uri: &str,
    state: String,
) -> Result<(url::Url, String), OAuthError> {
    let client = client(settings, &settings.token_url, Some(redirect_uri))?;
    let mut request = client
        .authorize_url(|| CsrfToken::new(state))
        .map_err(|err| OAuthError::Settings(err.to_string()))?
        .add_scopes(
            settings
                .scopes
                .split_whitespace()
                .map(|scope| Scope::new(scope.to_string())),
        );
    let mut verifier = String::new();
    if settings.pkce {
        let (challenge, pkce_verifier) = PkceCodeChallenge::new_random_sha256();
        request = request.set_pkce_challenge(challenge);
        verifier = pkce_verifier.secret().clone();
    }
    let (url, _) = request.url();
    Ok((url, verifier))
}

/// Exchanges an authorization code.
pub async fn exchange_code(
    network: &Arc<NetworkPolicy>,
    settings: &OAuthSettings,
    redirect_uri: &str,
    code: String,
    verifier: String,
) -> Result<Grant, OAuthError> {
    let client = client(settings, &settings.token_url, Some(redirect_uri))?;
    let mut request = client.exchange_code(AuthorizationCode::new(code));
    if !verifier.is_empty() {
        request = request.set_pkce_verifier(PkceCodeVerifier::new(verifier));
    }
    let http = http(Arc::clone(network), settings.json_body);
    let token = request.request_async(&http).await.map_err(token_error)?;
    Ok(grant_of(settings, token, None))
}

/// Runs the client credentials grant.
pub async fn client_credentials(
    network: &Arc<NetworkPolicy>,
    settings: &OAuthSettings,
    previous: Option<&Grant>,
) -> Result<Grant, OAuthError> {
    let client = client(settings, &settings.token_url, None)?;
    let http = http(Arc::clone(network), settings.json_body);
    let token = client
        .exchange_client_credentials()
        .add_scopes(
            settings
                .scopes
                .split_whitespace()
                .map(|scope| Scope::new(scope.to_string())),
        )
        .request_async(&http)
        .await
        .map_err(token_error)?;
    Ok(grant_of(settings, token, previous))
}

/// Obtains a new access token for `grant`: with its refresh token, or by running the
/// client credentials grant again.
pub async fn refresh(network: &Arc<NetworkPolicy>, grant: &Grant) -> Result<Grant, OAuthError> {
    let settings = &grant.settings;
    if settings.grant == super::settings::GrantType::ClientCredentials {
        return client_credentials(network, settings, Some(grant)).await;
    }
    let Some(refresh_token) = &grant.refresh_token else {
        return Err(OAuthError::Refused(
            "the token expired and the provider gave no refresh token (ask for offline access)"
                .into(),
        ));
    };
    let token_url = settings
        .refresh_url
        .as_deref()
        .unwrap_or(&settings.token_url);
    let client = client(settings, token_url, None)?;
    let http = http(Arc::clone(network), settings.json_body);
    let refresh_token = RefreshToken::new(refresh_token.clone());
    let token = client
        .exchange_refresh_token(&refresh_token)
        .request_async(&http)
        .await
        .map_err(token_error)?;
    Ok(grant_of(settings, token, Some(grant)))
}

/// Revokes the grant at the provider's revocation endpoint (RFC 7009), if it declares
/// one: the refresh token when there is one (revoking the family), else the access
/// token. Sent by hand rather than by the `oauth2` crate, which refuses a plain-HTTP
/// revocation URL while it accepts one for the token endpoint (an on-premises or test
/// provider has both on HTTP).
pub async fn revoke(network: &Arc<NetworkPolicy>, grant: &Grant) -> Result<bool, OAuthError> {
    let settings = &grant.settings;
    let Some(url) = &settings.revoke_url else {
        return Ok(false);
    };
    let (token, hint) = match &grant.refresh_token {
        Some(refresh) => (refresh.as_str(), "refresh_token"),
        None => (grant.access_token.as_str(), "access_token"),
    };
    let request = revocation_request(settings, url, token, hint)?;
    let response = http(Arc::clone(network), settings.json_body)(request)
        .await
        .map_err(|err| OAuthError::Provider(format!("revocation failed: {err}")))?;
    if response.status().is_success() {
        Ok(true)
    } else {
        Err(OAuthError::Provider(format!(
            "the revocation endpoint answered {}",
            response.status()
        )))
    }
}

/// The RFC 7009 request revoking `token`, with the client's credentials as the
/// connection type sends them. (A function of its own: the form serializer is not
/// `Send` and must not live in the caller's future.)
fn revocation_request(
    settings: &OAuthSettings,
    url: &str,
    token: &str,
    hint: &str,
) -> Result<oauth2::HttpRequest, OAuthError> {
    use base64::Engine as _;
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("token", token)
        .append_pair("token_type_hint", hint);
    let mut request = axum::http::Request::post(url).header(
        axum::http::header::CONTENT_TYPE,
        "application/x-www-form-urlencoded",
    );
    if settings.basic_auth {
        let encode =
            |text: &str| url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
        let credentials = format!(
            "{}:{}",
            encode(&settings.client_id),
            encode(settings.client_secret.as_deref().unwrap_or_default())
        );
        request = request.header(
            axum::http::header::AUTHORIZATION,
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(credentials)
            ),
        );
    } else {
        form.append_pair("client_id", &settings.client_id);
        if let Some(secret) = &settings.client_secret {
            form.append_pair("client_secret", secret);
        }
    }
    request
        .body(form.finish().into_bytes())
        .map_err(|err| OAuthError::Settings(format!("the revoke URL is not valid: {err}")))
}

//! OAuth 2.0 connections, run by the host for guests: which settings a connection
//! uses (`settings`), the token requests (`client`), the sealed grant (`grant`), the
//! authorization a customer gives through `/oauth/callback` (this module), single-
//! flight refresh with a lease (`refresh`) and the connections executions see
//! (`provider`). A guest only ever receives the access token.

pub mod client;
pub mod grant;
pub mod provider;
pub mod refresh;
pub mod settings;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use crate::app::AppState;
use crate::store::instances::Instance;
use crate::store::oauth::{OAuthConnection, OAuthStatus, PendingAuthorization};
use crate::store::{StoreError, now_ms};
use grant::Grant;
use settings::{GrantType, OAuthSettings};

pub use refresh::Refresher;

/// How long a customer has to consent before the `state` expires.
const STATE_LIFETIME_MS: i64 = 10 * 60 * 1000;
/// What the server's signature of a `state` is for.
const STATE_PURPOSE: &str = "oauth-state";

/// Why an OAuth operation failed.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// The connection is not an OAuth connection of the instance's integration.
    #[error("{0}")]
    NotOAuth(String),
    /// The connection's settings are incomplete or invalid (no client id, bad URL).
    #[error("the OAuth settings are incomplete: {0}")]
    Settings(String),
    /// The provider refused the grant for good (`invalid_grant`, a revoked or
    /// unknown client): the customer must connect again.
    #[error("{0}")]
    Refused(String),
    /// The connection's grant was refused earlier and must be connected again.
    #[error("the connection must be connected again: {0}")]
    NeedsReconnect(String),
    /// The provider failed or answered nonsense (5xx, HTML, a timeout): try again.
    #[error("{0}")]
    Provider(String),
    /// The `state` is malformed, forged, expired, or was used already.
    #[error("{0}")]
    BadState(&'static str),
    /// The customer declined at the provider (`error=access_denied`, ...).
    #[error("the authorization was declined: {0}")]
    Denied(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A bug or a broken sealed value; not the caller's fault.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Where the provider sends the customer back.
pub fn redirect_uri(state: &AppState) -> String {
    format!("{}/oauth/callback", state.public_url())
}

/// Owner of a connection template's sealed fields.
pub fn template_owner(tenant: &str, component: &str, key: &str) -> String {
    format!("template:{tenant}:{component}:{key}")
}

/// The declared connection type of `instance`'s connection variable `key`: the
/// component's key and the manifest entry.
pub fn connection_type(
    compiled: &crate::integrations::CompiledIntegration,
    key: &str,
) -> Result<(String, Value), OAuthError> {
    let var = compiled
        .definition
        .config_vars
        .iter()
        .find(|var| var.key == key)
        .ok_or_else(|| {
            OAuthError::NotOAuth(format!(
                "the integration declares no config variable `{key}`"
            ))
        })?;
    let reference = var.connection.as_ref().ok_or_else(|| {
        OAuthError::NotOAuth(format!("config variable `{key}` is not a connection"))
    })?;
    let entry = compiled
        .components
        .get(&reference.component)
        .and_then(|entry| {
            entry
                .manifest
                .document
                .get("connections")?
                .as_array()?
                .iter()
                .find(|declared| {
                    declared.get("key").and_then(Value::as_str) == Some(&reference.key)
                })
                .cloned()
        })
        .ok_or_else(|| {
            OAuthError::Internal(format!(
                "component `{}` no longer declares connection `{}`",
                reference.component, reference.key
            ))
        })?;
    Ok((reference.component.clone(), entry))
}

/// Whether the integration's connection variable `key` is of a connection type the
/// host runs OAuth for (then its fields alone do not make it connected).
pub fn is_oauth_connection(compiled: &crate::integrations::CompiledIntegration, key: &str) -> bool {
    connection_type(compiled, key).is_ok_and(|(_, declared)| declared.get("oauth2").is_some())
}

/// How a connection of an instance stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionStatus {
    /// Not set: no fields, or an OAuth connection with fields but neither a grant nor
    /// a token given over the API.
    Pending,
    /// Usable.
    Active,
    /// The provider refused its grant (the detail says why): connect it again.
    Error(Option<String>),
}

impl ConnectionStatus {
    /// `pending`, `active` or `error`, as the API and the wizard name it.
    pub fn as_str(&self) -> &'static str {
        match self {
            ConnectionStatus::Pending => "pending",
            ConnectionStatus::Active => "active",
            ConnectionStatus::Error(_) => "error",
        }
    }

    /// Why a refused connection was refused.
    pub fn detail(&self) -> Option<&str> {
        match self {
            ConnectionStatus::Error(detail) => detail.as_deref(),
            _ => None,
        }
    }
}

/// How the integration's connection variable `key` of an instance stands, from its
/// fields as set on the instance and its OAuth grant: one rule for the API, the
/// deploy checks and the wizard.
pub fn connection_status(
    compiled: &crate::integrations::CompiledIntegration,
    key: &str,
    fields: Option<&sluice_runtime::Connection>,
    grant: Option<&OAuthConnection>,
) -> ConnectionStatus {
    match (grant, fields) {
        (Some(grant), _) if grant.status == OAuthStatus::Error => {
            ConnectionStatus::Error(grant.status_detail.clone())
        }
        (Some(_), _) => ConnectionStatus::Active,
        (None, Some(connection)) if connection.token.is_some() => ConnectionStatus::Active,
        // A connection of fields only is set once one of them is; an OAuth one's
        // fields (the template's API base URL the wizard copies in) carry no token.
        (None, Some(connection))
            if !is_oauth_connection(compiled, key)
                && connection
                    .fields
                    .as_object()
                    .is_some_and(|fields| !fields.is_empty()) =>
        {
            ConnectionStatus::Active
        }
        _ => ConnectionStatus::Pending,
    }
}

/// The tenant's template fields of `component`'s connection type `key`, opened.
pub async fn template_fields(
    state: &AppState,
    tenant: &str,
    component: &str,
    key: &str,
) -> Result<Map<String, Value>, OAuthError> {
    let Some(template) = state
        .store
        .connection_template(tenant, component, key)
        .await?
    else {
        return Ok(Map::new());
    };
    let plaintext = state
        .secrets
        .open(
            &template_owner(tenant, component, key),
            &template.sealed_fields,
        )
        .map_err(|err| OAuthError::Internal(err.to_string()))?;
    serde_json::from_slice(&plaintext).map_err(|err| OAuthError::Internal(err.to_string()))
}

/// The OAuth settings of `instance`'s connection `key`.
pub async fn settings_for(
    state: &AppState,
    instance: &Instance,
    key: &str,
) -> Result<OAuthSettings, OAuthError> {
    let compiled = crate::integrations::instance_plan(state, instance)
        .await
        .map_err(|err| OAuthError::Internal(err.message))?;
    let (component, declared) = connection_type(&compiled, key)?;
    let connection_key = declared
        .get("key")
        .and_then(Value::as_str)
        .unwrap_or(key)
        .to_string();
    let template = template_fields(state, &instance.tenant_id, &component, &connection_key).await?;
    let customer = crate::instances::open_connections(state, instance)
        .map_err(|err| OAuthError::Internal(err.message))?
        .into_iter()
        .find(|connection| connection.key == key)
        .and_then(|connection| connection.fields.as_object().cloned())
        .unwrap_or_default();
    OAuthSettings::resolve(&declared, &template, &customer)?.ok_or_else(|| {
        OAuthError::NotOAuth(format!(
            "connection `{key}` (type `{connection_key}` of component `{component}`) is not an \
             OAuth 2.0 connection; set its fields instead"
        ))
    })
}

/// What starting an authorization gives the customer.
#[derive(Debug)]
pub enum Started {
    /// Send the customer here to consent.
    Consent(url::Url),
    /// A client credentials connection: connected already.
    Connected,
}

/// Starts connecting `instance`'s connection `key` for its customer: the authorize
/// URL with a signed, single-use, short-lived `state` bound to tenant, customer,
/// instance and connection (and a PKCE challenge when the type asks for one). A
/// client credentials connection is exchanged at once instead.
pub async fn start(
    state: &AppState,
    instance: &Instance,
    key: &str,
    popup: bool,
) -> Result<Started, OAuthError> {
    let settings = settings_for(state, instance, key).await?;
    if settings.grant == GrantType::ClientCredentials {
        let grant = client::client_credentials(&state.network, &settings, None).await?;
        save_grant(state, instance, key, &grant).await?;
        return Ok(Started::Connected);
    }
    let random = crate::secrets::random_bytes::<16>()
        .map_err(|err| OAuthError::Internal(err.to_string()))?;
    let id = URL_SAFE_NO_PAD.encode(random);
    let expires = now_ms() + STATE_LIFETIME_MS;
    let signed = format!("{id}.{expires}");
    let signature = URL_SAFE_NO_PAD.encode(state.secrets.sign(STATE_PURPOSE, signed.as_bytes()));
    let (url, verifier) = client::authorize_url(
        &settings,
        &redirect_uri(state),
        format!("{signed}.{signature}"),
    )?;
    let sealed_verifier = state
        .secrets
        .seal(&format!("oauth-pending:{id}"), verifier.as_bytes())
        .map_err(|err| OAuthError::Internal(err.to_string()))?;
    state
        .store
        .put_pending_authorization(&PendingAuthorization {
            id,
            tenant_id: instance.tenant_id.clone(),
            customer_id: instance.customer_id.clone(),
            instance_id: instance.id.clone(),
            connection_key: key.to_string(),
            sealed_verifier,
            popup,
            expires_ms: expires,
        })
        .await?;
    Ok(Started::Consent(url))
}

/// Saves a new grant for the connection (replacing an old or failed one).
async fn save_grant(
    state: &AppState,
    instance: &Instance,
    key: &str,
    grant: &Grant,
) -> Result<(), OAuthError> {
    let margin = i64::try_from(state.config.oauth_refresh_margin.as_millis()).unwrap_or(i64::MAX);
    let now = now_ms();
    state
        .store
        .save_oauth_connection(&OAuthConnection {
            tenant_id: instance.tenant_id.clone(),
            instance_id: instance.id.clone(),
            connection_key: key.to_string(),
            status: OAuthStatus::Active,
            status_detail: None,
            sealed_grant: grant.seal(&state.secrets, &instance.id, key)?,
            expires_at_ms: grant.expires_at_ms,
            refresh_due_ms: grant.refresh_due_ms(margin),
            refreshed_ms: now,
            updated_ms: now,
        })
        .await?;
    tracing::info!(tenant = %instance.tenant_id, instance = %instance.id, connection = %key, "connected an OAuth connection");
    Ok(())
}

/// The query of `/oauth/callback`.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Callback {
    pub state: Option<String>,
    pub code: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// What the callback completed (or failed for, once the `state` was good).
#[derive(Debug, Clone)]
pub struct Authorization {
    pub tenant_id: String,
    pub customer_id: String,
    pub instance_id: String,
    pub connection_key: String,
    pub popup: bool,
}

/// Checks a `state`'s signature and expiry; its id.
fn check_state<'a>(state: &AppState, text: &'a str) -> Result<&'a str, OAuthError> {
    let malformed = OAuthError::BadState("the `state` parameter is malformed");
    let mut parts = text.splitn(3, '.');
    let (Some(id), Some(expires), Some(signature)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed);
    };
    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| malformed)?;
    let signed = &text[..id.len() + 1 + expires.len()];
    if !state
        .secrets
        .verify(STATE_PURPOSE, signed.as_bytes(), &signature)
    {
        return Err(OAuthError::BadState(
            "the `state` parameter was not issued by this server",
        ));
    }
    let expires: i64 = expires
        .parse()
        .map_err(|_| OAuthError::BadState("the `state` parameter is malformed"))?;
    if expires < now_ms() {
        return Err(OAuthError::BadState(
            "the authorization took too long; start connecting again",
        ));
    }
    Ok(id)
}

/// Completes an authorization: checks the `state`, takes its pending row (so it
/// cannot be used again), exchanges the code and saves the sealed grant. On an error
/// after the state was good, the authorization it named comes with it; nothing is
/// stored but the pending row's removal.
pub async fn complete(
    state: &AppState,
    callback: Callback,
) -> Result<Authorization, (Option<Authorization>, OAuthError)> {
    let text = callback.state.as_deref().ok_or((
        None,
        OAuthError::BadState("the `state` parameter is missing"),
    ))?;
    let id = check_state(state, text).map_err(|err| (None, err))?;
    let pending = state
        .store
        .take_pending_authorization(id)
        .await
        .map_err(|err| (None, err.into()))?
        .ok_or((
            None,
            OAuthError::BadState(
                "this authorization was completed already; start connecting again",
            ),
        ))?;
    let authorization = Authorization {
        tenant_id: pending.tenant_id.clone(),
        customer_id: pending.customer_id.clone(),
        instance_id: pending.instance_id.clone(),
        connection_key: pending.connection_key.clone(),
        popup: pending.popup,
    };
    let failed = |err: OAuthError| (Some(authorization.clone()), err);
    if let Some(error) = callback.error {
        let description = callback
            .error_description
            .map(|text| format!(" ({text})"))
            .unwrap_or_default();
        return Err(failed(OAuthError::Denied(format!("{error}{description}"))));
    }
    let code = callback
        .code
        .filter(|code| !code.is_empty())
        .ok_or_else(|| failed(OAuthError::BadState("the provider sent no `code`")))?;
    let instance = state
        .store
        .get_instance(&pending.tenant_id, &pending.instance_id)
        .await
        .map_err(|err| failed(err.into()))?
        .ok_or_else(|| failed(OAuthError::NotOAuth("the instance was removed".into())))?;
    let settings = settings_for(state, &instance, &pending.connection_key)
        .await
        .map_err(failed)?;
    let verifier = state
        .secrets
        .open(
            &format!("oauth-pending:{}", pending.id),
            &pending.sealed_verifier,
        )
        .map_err(|err| failed(OAuthError::Internal(err.to_string())))?;
    let verifier =
        String::from_utf8(verifier).map_err(|err| failed(OAuthError::Internal(err.to_string())))?;
    let grant = client::exchange_code(
        &state.network,
        &settings,
        &redirect_uri(state),
        code,
        verifier,
    )
    .await
    .map_err(failed)?;
    save_grant(state, &instance, &pending.connection_key, &grant)
        .await
        .map_err(failed)?;
    Ok(authorization)
}

/// Disconnects: revokes the grant at the provider when it declares a revocation URL
/// (best effort) and deletes the tokens.
pub async fn disconnect(
    state: &AppState,
    instance: &Instance,
    key: &str,
) -> Result<(), OAuthError> {
    if let Some(row) = state
        .store
        .oauth_connection(&instance.tenant_id, &instance.id, key)
        .await?
    {
        revoke_row(state, &row).await;
        state
            .store
            .delete_oauth_connection(&instance.tenant_id, &instance.id, key)
            .await?;
    }
    Ok(())
}

/// Revokes every grant of an instance that is going away (best effort: a provider
/// that fails is logged, the removal goes on).
pub async fn revoke_all(state: &AppState, instance: &Instance) -> Result<(), OAuthError> {
    for row in state
        .store
        .oauth_connections_of(&instance.tenant_id, &instance.id)
        .await?
    {
        revoke_row(state, &row).await;
    }
    Ok(())
}

async fn revoke_row(state: &AppState, row: &OAuthConnection) {
    let revoked = match Grant::open(
        &state.secrets,
        &row.instance_id,
        &row.connection_key,
        &row.sealed_grant,
    ) {
        Ok(grant) => client::revoke(&state.network, &grant).await,
        Err(err) => Err(err),
    };
    match revoked {
        Ok(true) => {
            tracing::info!(tenant = %row.tenant_id, instance = %row.instance_id, connection = %row.connection_key, "revoked an OAuth grant")
        }
        Ok(false) => {}
        Err(err) => {
            tracing::warn!(tenant = %row.tenant_id, instance = %row.instance_id, connection = %row.connection_key, error = %err, "revoking an OAuth grant failed; its tokens are deleted anyway")
        }
    }
}

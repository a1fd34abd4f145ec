//! [`OAuth2`]: how the host obtains and refreshes the token of an OAuth 2.0
//! connection type (grant, endpoints, scopes, PKCE, token request flavor). The
//! component declares it; the host runs the flow and hands the guest the token.

use serde_json::{Value, json};

/// The grant the host runs to obtain a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantType {
    /// The customer consents at the provider's authorize URL; the host exchanges the
    /// code and refreshes the token with the refresh token.
    AuthorizationCode,
    /// The host exchanges the client id and secret for a token (machine to machine).
    ClientCredentials,
}

/// How the token endpoint wants its requests (providers differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenBody {
    /// `application/x-www-form-urlencoded`, as RFC 6749 says.
    #[default]
    Form,
    /// A JSON object with the same fields.
    Json,
}

/// Where the client id and secret go in a token request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// An HTTP Basic `Authorization` header, as RFC 6749 prefers.
    #[default]
    Basic,
    /// `client_id` and `client_secret` in the request body.
    Body,
}

/// The OAuth 2.0 settings of a connection type. The URLs and scopes are defaults: a
/// tenant's connection template may override them (a provider with a domain per
/// customer, a test provider), and the client id and secret come from the template.
///
/// ```
/// use sluice_sdk::{ConnectionType, oauth2::OAuth2};
/// let github = ConnectionType::new("github", "oauth2").oauth2(
///     OAuth2::authorization_code(
///         "https://github.com/login/oauth/authorize",
///         "https://github.com/login/oauth/access_token",
///     )
///     .scopes("repo admin:repo_hook")
///     .pkce(),
/// );
/// # let _ = github;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuth2 {
    grant: GrantType,
    authorize_url: Option<String>,
    token_url: String,
    refresh_url: Option<String>,
    revoke_url: Option<String>,
    scopes: String,
    pkce: bool,
    body: TokenBody,
    client_auth: ClientAuth,
}

impl OAuth2 {
    /// The authorization code grant, with the provider's authorize and token URLs.
    pub fn authorization_code(
        authorize_url: impl Into<String>,
        token_url: impl Into<String>,
    ) -> Self {
        Self {
            grant: GrantType::AuthorizationCode,
            authorize_url: Some(authorize_url.into()),
            ..Self::client_credentials(token_url)
        }
    }

    /// The client credentials grant, with the provider's token URL.
    pub fn client_credentials(token_url: impl Into<String>) -> Self {
        Self {
            grant: GrantType::ClientCredentials,
            authorize_url: None,
            token_url: token_url.into(),
            refresh_url: None,
            revoke_url: None,
            scopes: String::new(),
            pkce: false,
            body: TokenBody::Form,
            client_auth: ClientAuth::Basic,
        }
    }

    /// Space-separated scopes to ask for.
    pub fn scopes(mut self, scopes: impl Into<String>) -> Self {
        self.scopes = scopes.into();
        self
    }

    /// Uses PKCE with the S256 method (RFC 7636) in the authorization code grant.
    pub fn pkce(mut self) -> Self {
        self.pkce = true;
        self
    }

    /// Where refresh requests go, when not to the token URL.
    pub fn refresh_url(mut self, url: impl Into<String>) -> Self {
        self.refresh_url = Some(url.into());
        self
    }

    /// The revocation endpoint (RFC 7009), called when an instance is removed.
    pub fn revoke_url(mut self, url: impl Into<String>) -> Self {
        self.revoke_url = Some(url.into());
        self
    }

    /// How token requests are encoded (default: a form).
    pub fn token_body(mut self, body: TokenBody) -> Self {
        self.body = body;
        self
    }

    /// Where the client credentials go in token requests (default: HTTP Basic).
    pub fn client_auth(mut self, client_auth: ClientAuth) -> Self {
        self.client_auth = client_auth;
        self
    }

    /// The manifest's `oauth2` object (see `docs/manifest.md`).
    pub(crate) fn manifest(&self) -> Value {
        let mut manifest = json!({
            "grantType": match self.grant {
                GrantType::AuthorizationCode => "authorizationCode",
                GrantType::ClientCredentials => "clientCredentials",
            },
            "tokenUrl": self.token_url,
            "scopes": self.scopes,
            "pkce": if self.pkce { "S256" } else { "none" },
            "tokenRequest": {
                "body": match self.body { TokenBody::Form => "form", TokenBody::Json => "json" },
                "clientAuth": match self.client_auth {
                    ClientAuth::Basic => "basic",
                    ClientAuth::Body => "body",
                },
            },
        });
        for (name, value) in [
            ("authorizeUrl", &self.authorize_url),
            ("refreshUrl", &self.refresh_url),
            ("revokeUrl", &self.revoke_url),
        ] {
            if let Some(value) = value {
                manifest[name] = json!(value);
            }
        }
        manifest
    }
}

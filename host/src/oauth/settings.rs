//! Which OAuth 2.0 settings a connection uses: its component's declaration (the
//! manifest's `oauth2` object), overridden by the customer's fields, overridden by the
//! tenant's connection template (client id and secret, endpoints).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::OAuthError;

/// The grant the host runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum GrantType {
    AuthorizationCode,
    ClientCredentials,
}

/// Everything needed to obtain, refresh and revoke a connection's token. Kept sealed
/// with the tokens, so a refresh needs neither the component nor the template.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OAuthSettings {
    pub grant: GrantType,
    pub authorize_url: Option<String>,
    pub token_url: String,
    pub refresh_url: Option<String>,
    pub revoke_url: Option<String>,
    /// Space-separated.
    pub scopes: String,
    pub pkce: bool,
    /// Token requests as JSON rather than a form.
    pub json_body: bool,
    /// Client credentials in an HTTP Basic header rather than the body.
    pub basic_auth: bool,
    pub client_id: String,
    pub client_secret: Option<String>,
}

impl std::fmt::Debug for OAuthSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthSettings")
            .field("grant", &self.grant)
            .field("authorize_url", &self.authorize_url)
            .field("token_url", &self.token_url)
            .field("revoke_url", &self.revoke_url)
            .field("scopes", &self.scopes)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

/// Field names a template or a customer may set to override the declaration.
pub const OVERRIDABLE: [&str; 7] = [
    "authorizeUrl",
    "tokenUrl",
    "refreshUrl",
    "revokeUrl",
    "scopes",
    "clientId",
    "clientSecret",
];

/// Fields that never reach a guest: the client secret is the tenant's, and the
/// endpoints are the host's business.
pub fn is_hidden_from_guest(field: &str) -> bool {
    field == "clientSecret"
}

impl OAuthSettings {
    /// The settings of connection type `declared` (an entry of a manifest's
    /// `connections`), with `template` fields over `customer` fields over the
    /// declaration's defaults. `Ok(None)` when the type declares no `oauth2`.
    pub fn resolve(
        declared: &Value,
        template: &Map<String, Value>,
        customer: &Map<String, Value>,
    ) -> Result<Option<OAuthSettings>, OAuthError> {
        let Some(oauth2) = declared.get("oauth2") else {
            return Ok(None);
        };
        let bad = |message: String| OAuthError::Settings(message);
        // With the tenant's secret in play, the customer may not redirect the token
        // requests that carry it (nor change what is asked for with it).
        let customer = if template.contains_key("clientSecret") {
            &Map::new()
        } else {
            customer
        };
        let text = |name: &str| -> Option<String> {
            [template.get(name), customer.get(name), oauth2.get(name)]
                .into_iter()
                .flatten()
                .find_map(|value| value.as_str().map(str::trim).map(str::to_string))
                .filter(|value| !value.is_empty())
        };
        let grant = match oauth2.get("grantType").and_then(Value::as_str) {
            Some("authorizationCode") => GrantType::AuthorizationCode,
            Some("clientCredentials") => GrantType::ClientCredentials,
            other => {
                return Err(bad(format!(
                    "the manifest's `oauth2.grantType` is {other:?}; expected \
                     `authorizationCode` or `clientCredentials`"
                )));
            }
        };
        let token_url = text("tokenUrl").ok_or_else(|| bad("no token URL is set".into()))?;
        let authorize_url = text("authorizeUrl");
        if grant == GrantType::AuthorizationCode && authorize_url.is_none() {
            return Err(bad("no authorize URL is set".into()));
        }
        let client_id = text("clientId").ok_or_else(|| {
            bad("no client id is set: the tenant sets it in a connection template".into())
        })?;
        for (name, url) in [
            ("authorizeUrl", &authorize_url),
            ("tokenUrl", &Some(token_url.clone())),
            ("refreshUrl", &text("refreshUrl")),
            ("revokeUrl", &text("revokeUrl")),
        ] {
            if let Some(url) = url {
                let parsed = url::Url::parse(url)
                    .map_err(|err| bad(format!("`{name}` `{url}` is not a URL: {err}")))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(bad(format!("`{name}` `{url}` is not an http(s) URL")));
                }
            }
        }
        let request = oauth2.get("tokenRequest");
        let flavor = |name: &str| request.and_then(|r| r.get(name)).and_then(Value::as_str);
        Ok(Some(OAuthSettings {
            grant,
            authorize_url,
            token_url,
            refresh_url: text("refreshUrl"),
            revoke_url: text("revokeUrl"),
            scopes: text("scopes").unwrap_or_default(),
            pkce: oauth2.get("pkce").and_then(Value::as_str) == Some("S256"),
            json_body: flavor("body") == Some("json"),
            basic_auth: flavor("clientAuth") != Some("body"),
            client_id,
            client_secret: text("clientSecret"),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn template_overrides_customer_overrides_declaration() {
        let declared = json!({"key": "github", "kind": "oauth2", "oauth2": {
            "grantType": "authorizationCode",
            "authorizeUrl": "https://github.com/login/oauth/authorize",
            "tokenUrl": "https://github.com/login/oauth/access_token",
            "scopes": "repo", "pkce": "S256",
            "tokenRequest": {"body": "json", "clientAuth": "body"}}});
        let template = object(json!({"clientId": "id", "clientSecret": "secret",
            "tokenUrl": "http://127.0.0.1:9/token"}));
        let customer = object(json!({"scopes": "repo user", "clientId": "ignored",
            "authorizeUrl": "https://evil.example.com/authorize"}));
        let settings = OAuthSettings::resolve(&declared, &template, &customer)
            .unwrap()
            .unwrap();
        assert_eq!(settings.client_id, "id");
        assert_eq!(settings.token_url, "http://127.0.0.1:9/token");
        // The template holds the secret: nothing of the customer's applies.
        assert_eq!(settings.scopes, "repo");
        assert_eq!(
            settings.authorize_url.as_deref(),
            Some("https://github.com/login/oauth/authorize")
        );
        let own = object(json!({"clientId": "mine", "clientSecret": "own", "scopes": "user"}));
        let settings = OAuthSettings::resolve(&declared, &Map::new(), &own)
            .unwrap()
            .unwrap();
        assert_eq!(
            (settings.client_id.as_str(), settings.scopes.as_str()),
            ("mine", "user")
        );
        assert!(settings.pkce && settings.json_body && !settings.basic_auth);
        assert!(!format!("{settings:?}").contains("secret\""));
    }

    #[test]
    fn missing_client_id_and_bad_urls_are_refused() {
        let declared = json!({"oauth2": {"grantType": "clientCredentials",
            "tokenUrl": "https://auth.example.com/token"}});
        let none = Map::new();
        assert!(OAuthSettings::resolve(&declared, &none, &none).is_err());
        let bad = object(json!({"clientId": "x", "tokenUrl": "file:///etc/passwd"}));
        assert!(OAuthSettings::resolve(&declared, &bad, &none).is_err());
        let plain = json!({"kind": "api-key"});
        assert_eq!(OAuthSettings::resolve(&plain, &none, &none).unwrap(), None);
    }
}

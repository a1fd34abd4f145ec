//! [`Grant`]: what a connection's OAuth 2.0 authorization holds (tokens, expiry, the
//! settings to refresh and revoke it), sealed at rest with the server's key and bound
//! to its instance and connection key.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sluice_runtime::OAuthToken;

use super::OAuthError;
use super::settings::OAuthSettings;
use crate::secrets::Secrets;

/// A connection's tokens and how to renew them.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Grant {
    pub settings: OAuthSettings,
    pub access_token: String,
    /// Never handed to a guest, logged or answered by the API.
    pub refresh_token: Option<String>,
    pub token_type: String,
    pub expires_at_ms: Option<i64>,
    pub scopes: Vec<String>,
    /// Non-secret extra fields of the token response (`instance_url`, ...).
    #[serde(default)]
    pub extra: BTreeMap<String, Value>,
    /// When the token was obtained.
    pub obtained_ms: i64,
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grant")
            .field("settings", &self.settings)
            .field("token_type", &self.token_type)
            .field("expires_at_ms", &self.expires_at_ms)
            .field("has_refresh_token", &self.refresh_token.is_some())
            .finish_non_exhaustive()
    }
}

/// Extra token-response fields a guest may see: strings and numbers whose names do
/// not look like credentials.
pub fn public_fields(extra: &BTreeMap<String, Value>) -> BTreeMap<String, Value> {
    extra
        .iter()
        .filter(|(name, value)| {
            let name = name.to_ascii_lowercase();
            let secret = ["token", "secret", "password", "code", "key"]
                .iter()
                .any(|word| name.contains(word));
            !secret && (value.is_string() || value.is_number() || value.is_boolean())
        })
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

/// The owner a grant is sealed for: another connection's sealed grant does not open.
fn owner(instance: &str, key: &str) -> String {
    format!("oauth:{instance}:{key}")
}

impl Grant {
    pub fn seal(
        &self,
        secrets: &Secrets,
        instance: &str,
        key: &str,
    ) -> Result<Vec<u8>, OAuthError> {
        let plaintext =
            serde_json::to_vec(self).map_err(|err| OAuthError::Internal(err.to_string()))?;
        secrets
            .seal(&owner(instance, key), &plaintext)
            .map_err(|err| OAuthError::Internal(err.to_string()))
    }

    pub fn open(
        secrets: &Secrets,
        instance: &str,
        key: &str,
        sealed: &[u8],
    ) -> Result<Grant, OAuthError> {
        let plaintext = secrets
            .open(&owner(instance, key), sealed)
            .map_err(|err| OAuthError::Internal(err.to_string()))?;
        serde_json::from_slice(&plaintext).map_err(|err| OAuthError::Internal(err.to_string()))
    }

    /// The token as a guest receives it: the access token, never the refresh token.
    pub fn guest_token(&self) -> OAuthToken {
        OAuthToken {
            access_token: self.access_token.clone(),
            token_type: self.token_type.clone(),
            expires_at_ms: self.expires_at_ms.and_then(|ms| u64::try_from(ms).ok()),
            scopes: self.scopes.clone(),
        }
    }

    /// When the background refresher should renew it: `margin` before expiry, but
    /// never earlier than half its lifetime (a 10-minute token is not refreshed on
    /// every use). `None` when it does not expire.
    pub fn refresh_due_ms(&self, margin_ms: i64) -> Option<i64> {
        let expires = self.expires_at_ms?;
        let lifetime = expires.saturating_sub(self.obtained_ms).max(0);
        Some(expires.saturating_sub(margin_ms.min(lifetime / 2)))
    }
}

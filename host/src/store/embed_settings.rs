//! Storage of a tenant's embedding settings: which origins may frame its embedded
//! pages (the CSP `frame-ancestors`), and where its customers' users are sent after an
//! OAuth connection succeeds or fails.

use async_trait::async_trait;

use super::StoreError;

/// A tenant's embedding settings, as validated by the API (`embed::origins`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmbedSettings {
    /// Origins (`scheme://host[:port]`, canonical) allowed to frame the embedded pages;
    /// empty: none may (`frame-ancestors 'none'`).
    pub frame_ancestors: Vec<String>,
    /// Where the OAuth flow sends the user after a connection succeeded.
    pub oauth_success_redirect: Option<String>,
    /// Where the OAuth flow sends the user after a connection failed.
    pub oauth_failure_redirect: Option<String>,
    pub updated_ms: i64,
}

#[async_trait]
pub trait EmbedSettingsStore: Send + Sync {
    /// The tenant's settings; `None` when it never set any (nothing may frame its
    /// pages, no OAuth redirects).
    async fn embed_settings(&self, tenant: &str) -> Result<Option<EmbedSettings>, StoreError>;
    /// Replaces the tenant's settings (`updated_ms` is set by the store) and returns
    /// them as stored.
    async fn put_embed_settings(
        &self,
        tenant: &str,
        settings: EmbedSettings,
    ) -> Result<EmbedSettings, StoreError>;
}

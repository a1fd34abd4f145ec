//! The bearer tokens a fake API accepts: a registry shared between the fake OAuth
//! provider, which records every access token it issues with its expiry, and the fake
//! services that check requests against it, plus static tokens a test registers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
struct Entry {
    /// `None` for a static token (a personal access token), which never expires.
    expires_at: Option<Instant>,
    revoked: bool,
}

/// Bearer tokens and whether each is still good. Clones share one registry, so the
/// fake OAuth provider and the fake GitHub started with clones of the same registry
/// agree on which tokens are valid.
#[derive(Debug, Clone, Default)]
pub struct TokenRegistry {
    tokens: Arc<Mutex<HashMap<String, Entry>>>,
}

impl TokenRegistry {
    /// An empty registry: no token is valid.
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry holding one static token, e.g. a personal access token.
    pub fn with_static(token: &str) -> Self {
        let registry = Self::new();
        registry.add_static(token);
        registry
    }

    fn tokens(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.tokens.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers `token` as valid until revoked, like a personal access token.
    pub fn add_static(&self, token: &str) {
        self.tokens().insert(
            token.to_string(),
            Entry {
                expires_at: None,
                revoked: false,
            },
        );
    }

    /// Records `token` as issued now and valid for `lifetime` (what the fake OAuth
    /// provider does for each access token it hands out).
    pub fn issue(&self, token: &str, lifetime: Duration) {
        self.tokens().insert(
            token.to_string(),
            Entry {
                // A lifetime too long to represent means "does not expire".
                expires_at: Instant::now().checked_add(lifetime),
                revoked: false,
            },
        );
    }

    /// Revokes `token`. Returns whether the registry knew it.
    pub fn revoke(&self, token: &str) -> bool {
        match self.tokens().get_mut(token) {
            Some(entry) => {
                entry.revoked = true;
                true
            }
            None => false,
        }
    }

    /// Makes `token` expire now, so a test needs not wait for its lifetime. Returns
    /// whether the registry knew it.
    pub fn expire(&self, token: &str) -> bool {
        match self.tokens().get_mut(token) {
            Some(entry) => {
                entry.expires_at = Some(Instant::now());
                true
            }
            None => false,
        }
    }

    /// Whether `token` is known, not revoked and not expired.
    pub fn is_valid(&self, token: &str) -> bool {
        self.tokens().get(token).is_some_and(|entry| {
            !entry.revoked
                && entry
                    .expires_at
                    .is_none_or(|expires_at| Instant::now() < expires_at)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::TokenRegistry;

    #[test]
    fn a_token_is_valid_until_it_expires_or_is_revoked() {
        let registry = TokenRegistry::with_static("pat");
        let shared = registry.clone();
        shared.issue("short", Duration::ZERO);
        shared.issue("long", Duration::from_secs(3600));
        shared.issue("revoked", Duration::from_secs(3600));
        assert!(shared.revoke("revoked"));

        assert!(registry.is_valid("pat"));
        assert!(registry.is_valid("long"));
        assert!(
            !registry.is_valid("short"),
            "a zero lifetime is expired at once"
        );
        assert!(!registry.is_valid("revoked"));
        assert!(!registry.is_valid("unknown"));
        assert!(!registry.revoke("unknown"));

        assert!(registry.expire("long"));
        assert!(!registry.is_valid("long"));
    }
}

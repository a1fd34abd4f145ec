//! Refreshing OAuth tokens exactly once per connection at a time: within this process
//! callers of one connection queue on one lock (single flight), and across hosts on
//! one database the refresher holds a lease on the connection's row while it asks the
//! provider. The rotated refresh token is written before the lease is released. The
//! background task refreshes tokens ahead of expiry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use super::OAuthError;
use super::client;
use super::grant::Grant;
use crate::app::AppState;
use crate::store::now_ms;
use crate::store::oauth::{ConnectionId, OAuthConnection, OAuthStatus};

/// How long a refresher holds a connection's lease: past it another host may take
/// over (the token request itself is bounded by the outbound timeouts).
const LEASE: Duration = Duration::from_secs(30);
/// How long a caller waits for another host's refresh before giving up.
const WAIT_FOR_OTHER_HOST: Duration = Duration::from_secs(10);
/// Connections refreshed per pass of the background task.
const BATCH: usize = 100;

/// The refresher of this host.
pub struct Refresher {
    /// This host's lease owner name.
    owner: String,
    locks: Mutex<HashMap<ConnectionId, Weak<tokio::sync::Mutex<()>>>>,
}

impl Default for Refresher {
    fn default() -> Self {
        Refresher {
            owner: crate::store::new_id(),
            locks: Mutex::default(),
        }
    }
}

fn is_due(row: &OAuthConnection, now: i64) -> bool {
    row.refresh_due_ms.is_some_and(|due| due <= now)
}

impl Refresher {
    fn lock_for(&self, id: &ConnectionId) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(lock) = locks.get(id).and_then(Weak::upgrade) {
            return lock;
        }
        locks.retain(|_, lock| lock.strong_count() > 0);
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        locks.insert(id.clone(), Arc::downgrade(&lock));
        lock
    }

    /// The connection's grant with a token that is not due for refresh, refreshing it
    /// first if it is. `Ok(None)`: the instance has no OAuth grant under `key`.
    pub async fn current(
        &self,
        state: &AppState,
        tenant: &str,
        instance: &str,
        key: &str,
    ) -> Result<Option<Grant>, OAuthError> {
        let Some(row) = state.store.oauth_connection(tenant, instance, key).await? else {
            return Ok(None);
        };
        if row.status == OAuthStatus::Error {
            return Err(OAuthError::NeedsReconnect(
                row.status_detail.unwrap_or_default(),
            ));
        }
        if !is_due(&row, now_ms()) {
            return Grant::open(&state.secrets, instance, key, &row.sealed_grant).map(Some);
        }
        self.refresh(state, (tenant.into(), instance.into(), key.into()))
            .await
    }

    /// Refreshes the connection if it is (still) due once this caller has its turn.
    pub async fn refresh(
        &self,
        state: &AppState,
        id: ConnectionId,
    ) -> Result<Option<Grant>, OAuthError> {
        let lock = self.lock_for(&id);
        let _turn = lock.lock().await;
        let (tenant, instance, key) = (&id.0, &id.1, &id.2);
        let give_up = tokio::time::Instant::now() + WAIT_FOR_OTHER_HOST;
        loop {
            // Read again under the lock: the caller before may have refreshed it.
            let Some(row) = state.store.oauth_connection(tenant, instance, key).await? else {
                return Ok(None);
            };
            if row.status == OAuthStatus::Error {
                return Err(OAuthError::NeedsReconnect(
                    row.status_detail.unwrap_or_default(),
                ));
            }
            let grant = Grant::open(&state.secrets, instance, key, &row.sealed_grant)?;
            let now = now_ms();
            if !is_due(&row, now) {
                return Ok(Some(grant));
            }
            let until = now.saturating_add(i64::try_from(LEASE.as_millis()).unwrap_or(i64::MAX));
            if state
                .store
                .lease_oauth_connection(tenant, instance, key, &self.owner, now, until)
                .await?
            {
                return self.refresh_leased(state, row, grant).await;
            }
            // Another host is refreshing it: wait for its result, then read it.
            if tokio::time::Instant::now() >= give_up {
                return Err(OAuthError::Provider(
                    "another host has been refreshing this connection for too long; try again"
                        .into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Asks the provider for a new token under the lease and writes the outcome.
    async fn refresh_leased(
        &self,
        state: &AppState,
        row: OAuthConnection,
        grant: Grant,
    ) -> Result<Option<Grant>, OAuthError> {
        let (tenant, instance, key) = (&row.tenant_id, &row.instance_id, &row.connection_key);
        match client::refresh(&state.network, &grant).await {
            Ok(fresh) => {
                let margin = i64::try_from(state.config.oauth_refresh_margin.as_millis())
                    .unwrap_or(i64::MAX);
                let now = now_ms();
                let updated = OAuthConnection {
                    status: OAuthStatus::Active,
                    status_detail: None,
                    sealed_grant: fresh.seal(&state.secrets, instance, key)?,
                    expires_at_ms: fresh.expires_at_ms,
                    refresh_due_ms: fresh.refresh_due_ms(margin),
                    refreshed_ms: now,
                    updated_ms: now,
                    ..row.clone()
                };
                if !state
                    .store
                    .finish_oauth_refresh(&updated, &self.owner)
                    .await?
                {
                    tracing::warn!(tenant = %tenant, instance = %instance, connection = %key, "the refresh lease lapsed before the refreshed token was saved");
                }
                tracing::info!(tenant = %tenant, instance = %instance, connection = %key, "refreshed an OAuth token");
                Ok(Some(fresh))
            }
            Err(OAuthError::Refused(reason)) => {
                let now = now_ms();
                let failed = OAuthConnection {
                    status: OAuthStatus::Error,
                    status_detail: Some(reason.clone()),
                    updated_ms: now,
                    ..row.clone()
                };
                state
                    .store
                    .finish_oauth_refresh(&failed, &self.owner)
                    .await?;
                tracing::warn!(tenant = %tenant, instance = %instance, connection = %key, reason = %reason, "the provider refused to refresh an OAuth token; the connection needs to be connected again");
                Err(OAuthError::NeedsReconnect(reason))
            }
            Err(err) => {
                state
                    .store
                    .release_oauth_lease(tenant, instance, key, &self.owner)
                    .await?;
                tracing::warn!(tenant = %tenant, instance = %instance, connection = %key, error = %err, "refreshing an OAuth token failed; it is tried again later");
                // A token that is due but not yet expired still works meanwhile.
                if grant
                    .expires_at_ms
                    .is_some_and(|expires| expires > now_ms())
                {
                    Ok(Some(grant))
                } else {
                    Err(err)
                }
            }
        }
    }

    /// One pass of the background task: refreshes every connection that is due.
    pub async fn refresh_due(&self, state: &AppState) -> Result<usize, OAuthError> {
        let due = state.store.due_oauth_connections(now_ms(), BATCH).await?;
        let count = due.len();
        for id in due {
            // Failures are logged by `refresh` and recorded on the connection.
            let _ = self.refresh(state, id).await;
        }
        Ok(count)
    }
}

/// Starts the background refresher when `oauth_refresh_every` is set.
pub fn spawn(state: &AppState) {
    let Some(every) = state.config.oauth_refresh_every else {
        return;
    };
    let state = state.clone();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(err) = state.oauth.refresh_due(&state).await {
                tracing::warn!(error = %err, "the OAuth refresher could not read due connections");
            }
        }
    });
}

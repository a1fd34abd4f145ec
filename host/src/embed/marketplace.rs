//! `/embed/s/{session}/`, the marketplace: the tenant's integrations, each at its
//! latest version with the name and description of its definition, a link to its
//! configuration wizard, and the status of the customer's instances of it.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::State;
use axum::response::Response;

use super::error::EmbedError;
use super::page::{Layout, Nav, render};
use super::session::EmbedSession;
use crate::app::AppState;
use crate::store::instances::Instance;
use crate::store::integrations::IntegrationVersion;

/// An integration as the marketplace shows it.
pub(crate) struct Card {
    pub key: String,
    pub name: String,
    pub description: Option<String>,
    pub version: i64,
    pub instances: Vec<InstanceBadge>,
}

/// One of the customer's instances of an integration.
pub(crate) struct InstanceBadge {
    pub id: String,
    pub name: String,
    pub status: &'static str,
    pub enabled: bool,
}

#[derive(Template)]
#[template(path = "embed/marketplace.html")]
struct MarketplacePage {
    layout: Layout,
    cards: Vec<Card>,
}

/// The name and description a definition (canonical JSON) gives itself; the key when
/// it cannot be read.
pub(crate) fn title_of(version: &IntegrationVersion) -> (String, Option<String>) {
    let definition: serde_json::Value =
        serde_json::from_str(&version.definition).unwrap_or_default();
    let text = |field: &str| {
        definition[field]
            .as_str()
            .map(str::trim)
            .filter(|text| !text.is_empty())
            .map(str::to_string)
    };
    (
        text("name").unwrap_or_else(|| version.key.clone()),
        text("description"),
    )
}

fn badge(instance: &Instance) -> InstanceBadge {
    InstanceBadge {
        id: instance.id.clone(),
        name: instance.name.clone(),
        status: instance.status.as_str(),
        enabled: instance.enabled,
    }
}

pub(crate) async fn show(
    session: EmbedSession,
    State(state): State<AppState>,
) -> Result<Response, EmbedError> {
    let integrations = state.store.list_integrations(&session.tenant_id).await?;
    let instances = state
        .store
        .list_instances(&session.tenant_id, Some(&session.customer_id))
        .await?;
    let mut by_integration: BTreeMap<&str, Vec<InstanceBadge>> = BTreeMap::new();
    for instance in &instances {
        by_integration
            .entry(instance.integration_key.as_str())
            .or_default()
            .push(badge(instance));
    }
    let cards = integrations
        .iter()
        .map(|summary| {
            let (name, description) = title_of(&summary.latest);
            Card {
                key: summary.latest.key.clone(),
                name,
                description,
                version: summary.latest.version,
                instances: by_integration
                    .remove(summary.latest.key.as_str())
                    .unwrap_or_default(),
            }
        })
        .collect();
    render(&MarketplacePage {
        layout: Layout::for_session(&session, "Marketplace", Nav::Marketplace),
        cards,
    })
}

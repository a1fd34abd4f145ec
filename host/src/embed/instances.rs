//! `/embed/s/{session}/instances`: the customer's instances, and each one's page with
//! its recent executions, newest first, 50 a page. Another customer's instance is not
//! found, exactly like an unknown one.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use base64::Engine as _;

use super::error::EmbedError;
use super::marketplace::title_of;
use super::page::{Layout, Nav, PagePath, render};
use super::session::EmbedSession;
use crate::api::executions::rfc3339;
use crate::app::AppState;
use crate::store::executions::{Execution, ExecutionFilter};
use crate::store::instances::Instance;

/// Executions per page of an instance.
pub const PAGE_SIZE: usize = 50;

pub(crate) struct InstanceRow {
    pub id: String,
    pub name: String,
    pub integration: String,
    pub version: i64,
    pub status: &'static str,
    pub status_detail: Option<String>,
    pub enabled: bool,
}

pub(crate) struct ExecutionRow {
    pub flow: String,
    pub status: &'static str,
    pub started: Option<String>,
    pub duration: Option<String>,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "embed/instances.html")]
struct InstancesPage {
    layout: Layout,
    instances: Vec<InstanceRow>,
}

#[derive(Template)]
#[template(path = "embed/instance.html")]
struct InstancePage {
    layout: Layout,
    instance: InstanceRow,
    executions: Vec<ExecutionRow>,
    /// The query of the next (older) page, when there is one.
    older: Option<String>,
    /// Whether this is a later page (a link back to the newest).
    paged: bool,
}

/// Integration names by key.
async fn integration_names(
    state: &AppState,
    tenant: &str,
) -> Result<BTreeMap<String, String>, EmbedError> {
    Ok(state
        .store
        .list_integrations(tenant)
        .await?
        .iter()
        .map(|summary| (summary.latest.key.clone(), title_of(&summary.latest).0))
        .collect())
}

fn row(instance: &Instance, names: &BTreeMap<String, String>) -> InstanceRow {
    InstanceRow {
        id: instance.id.clone(),
        name: instance.name.clone(),
        integration: names
            .get(&instance.integration_key)
            .cloned()
            .unwrap_or_else(|| instance.integration_key.clone()),
        version: instance.integration_version,
        status: instance.status.as_str(),
        status_detail: instance.status_detail.clone(),
        enabled: instance.enabled,
    }
}

pub(crate) async fn list(
    session: EmbedSession,
    State(state): State<AppState>,
) -> Result<Response, EmbedError> {
    let names = integration_names(&state, &session.tenant_id).await?;
    let instances = state
        .store
        .list_instances(&session.tenant_id, Some(&session.customer_id))
        .await?
        .iter()
        .map(|instance| row(instance, &names))
        .collect();
    render(&InstancesPage {
        layout: Layout::for_session(&session, "My integrations", Nav::Instances),
        instances,
    })
}

pub(crate) async fn show(
    session: EmbedSession,
    State(state): State<AppState>,
    PagePath((_, id)): PagePath<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, EmbedError> {
    let instance = state
        .store
        .get_instance(&session.tenant_id, &id)
        .await?
        // Another customer's instance is as unknown as a missing one.
        .filter(|instance| instance.customer_id == session.customer_id)
        .ok_or_else(|| EmbedError::NotFound("integration instance".into()))?;
    let before = query
        .as_deref()
        .and_then(|query| {
            url::form_urlencoded::parse(query.as_bytes())
                .find(|(name, _)| name == "before")
                .map(|(_, value)| value.into_owned())
        })
        .map(|cursor| decode_cursor(&cursor))
        .transpose()?;
    let paged = before.is_some();
    let mut executions = state
        .store
        .list_executions(
            &session.tenant_id,
            &ExecutionFilter {
                instance_id: Some(instance.id.clone()),
                before,
                limit: PAGE_SIZE + 1,
                ..ExecutionFilter::default()
            },
        )
        .await?;
    let older = if executions.len() > PAGE_SIZE {
        executions.truncate(PAGE_SIZE);
        executions
            .last()
            .map(|last| format!("before={}", encode_cursor(last)))
    } else {
        None
    };
    let names = integration_names(&state, &session.tenant_id).await?;
    let instance = row(&instance, &names);
    render(&InstancePage {
        layout: Layout::for_session(&session, instance.name.clone(), Nav::Instances),
        instance,
        executions: executions.iter().map(execution_row).collect(),
        older,
        paged,
    })
}

fn execution_row(execution: &Execution) -> ExecutionRow {
    ExecutionRow {
        flow: execution.flow_key.clone(),
        status: execution.status.as_str(),
        started: execution.started_ms.map(rfc3339),
        duration: execution
            .started_ms
            .zip(execution.finished_ms)
            .map(|(started, finished)| duration(finished.saturating_sub(started))),
        error: execution.error.clone(),
    }
}

/// `850 ms`, `12.3 s`, `4 min 5 s`.
fn duration(ms: i64) -> String {
    match ms {
        ..1_000 => format!("{} ms", ms.max(0)),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

fn encode_cursor(execution: &Execution) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("{}:{}", execution.created_ms, execution.id))
}

fn decode_cursor(cursor: &str) -> Result<(i64, String), EmbedError> {
    let invalid = || EmbedError::BadRequest("this page link is not valid".into());
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (ms, id) = text.split_once(':').ok_or_else(invalid)?;
    Ok((ms.parse().map_err(|_| invalid())?, id.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(850), "850 ms");
        assert_eq!(duration(12_345), "12.3 s");
        assert_eq!(duration(245_000), "4 min 5 s");
        assert_eq!(duration(-5), "0 ms");
    }

    #[test]
    fn cursors_round_trip_and_bad_ones_are_refused() {
        let cursor = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("12:abc");
        assert_eq!(decode_cursor(&cursor).unwrap(), (12, "abc".to_string()));
        assert!(matches!(
            decode_cursor("%%"),
            Err(EmbedError::BadRequest(_))
        ));
    }
}

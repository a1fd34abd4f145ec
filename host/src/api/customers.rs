//! `/v1/customers`: the tenant's customers, each with an optional external id (the
//! tenant's own id for it, unique per tenant, searchable with `?externalId=`).

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde::{Deserialize, Deserializer, Serialize};

use super::auth::TenantAuth;
use super::error::ApiError;
use super::executions::rfc3339;
use super::extract::{Json, Path, Query};
use crate::app::AppState;
use crate::store::customers::{Customer, CustomerUpdate};

/// Longest customer name or external id, in bytes.
const MAX_TEXT_BYTES: usize = 512;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/customers", get(list).post(create))
        .route("/customers/{id}", get(fetch).patch(update).delete(remove))
}

/// A customer as the API shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CustomerView {
    id: String,
    name: String,
    external_id: Option<String>,
    created_at: String,
}

impl From<Customer> for CustomerView {
    fn from(customer: Customer) -> Self {
        CustomerView {
            id: customer.id,
            name: customer.name,
            external_id: customer.external_id,
            created_at: rfc3339(customer.created_ms),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewCustomer {
    name: String,
    #[serde(default)]
    external_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CustomerPatch {
    #[serde(default)]
    name: Option<String>,
    /// Absent: unchanged; `null`: removed.
    #[serde(default, deserialize_with = "present")]
    external_id: Option<Option<String>>,
}

/// Tells a field set to `null` (`Some(None)`) from an absent one (`None`, the default).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(deserializer).map(Some)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ListQuery {
    #[serde(default)]
    external_id: Option<String>,
}

fn check_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(ApiError::invalid("`name` must not be empty"));
    }
    if name.len() > MAX_TEXT_BYTES {
        return Err(ApiError::invalid(format!(
            "`name` is longer than {MAX_TEXT_BYTES} bytes"
        )));
    }
    Ok(name.to_string())
}

fn check_external_id(external_id: &str) -> Result<(), ApiError> {
    if external_id.trim().is_empty() {
        return Err(ApiError::invalid(
            "`externalId` must not be empty (send null to remove it)",
        ));
    }
    if external_id.len() > MAX_TEXT_BYTES {
        return Err(ApiError::invalid(format!(
            "`externalId` is longer than {MAX_TEXT_BYTES} bytes"
        )));
    }
    Ok(())
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format_args!("customer `{id}`"))
}

async fn create(
    TenantAuth(tenant): TenantAuth,
    axum::extract::State(state): axum::extract::State<AppState>,
    Json(request): Json<NewCustomer>,
) -> Result<impl IntoResponse, ApiError> {
    let name = check_name(&request.name)?;
    if let Some(external_id) = &request.external_id {
        check_external_id(external_id)?;
    }
    let customer = state
        .store
        .create_customer(&tenant.id, &name, request.external_id.as_deref())
        .await?;
    let location = format!("/v1/customers/{}", customer.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(CustomerView::from(customer)),
    ))
}

async fn list(
    TenantAuth(tenant): TenantAuth,
    axum::extract::State(state): axum::extract::State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let customers = state
        .store
        .list_customers(&tenant.id, query.external_id.as_deref())
        .await?;
    let customers: Vec<CustomerView> = customers.into_iter().map(CustomerView::from).collect();
    Ok(Json(serde_json::json!({ "customers": customers })))
}

async fn fetch(
    TenantAuth(tenant): TenantAuth,
    axum::extract::State(state): axum::extract::State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<CustomerView>, ApiError> {
    state
        .store
        .get_customer(&tenant.id, &id)
        .await?
        .map(|customer| Json(customer.into()))
        .ok_or_else(|| not_found(&id))
}

async fn update(
    TenantAuth(tenant): TenantAuth,
    axum::extract::State(state): axum::extract::State<AppState>,
    Path(id): Path<String>,
    Json(patch): Json<CustomerPatch>,
) -> Result<Json<CustomerView>, ApiError> {
    let name = patch.name.as_deref().map(check_name).transpose()?;
    if let Some(Some(external_id)) = &patch.external_id {
        check_external_id(external_id)?;
    }
    let customer = state
        .store
        .update_customer(
            &tenant.id,
            &id,
            CustomerUpdate {
                name,
                external_id: patch.external_id,
            },
        )
        .await?;
    Ok(Json(customer.into()))
}

async fn remove(
    TenantAuth(tenant): TenantAuth,
    axum::extract::State(state): axum::extract::State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.store.delete_customer(&tenant.id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

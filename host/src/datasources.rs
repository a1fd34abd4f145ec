//! Data sources at configuration time: runs the data source a config variable names
//! (a picklist's dropdown) on the instance being configured, with its connections
//! (the customer's fresh OAuth token included), and checks a chosen value against
//! what it lists.

use std::sync::Arc;

use axum::http::StatusCode;
use serde::Serialize;
use serde_json::Value;
use sluice_runtime::{Call, Limits, Outcome, Returned};

use crate::api::error::ApiError;
use crate::app::AppState;
use crate::integrations::CompiledIntegration;
use crate::store::instances::Instance;

/// Most items a picklist keeps (longer lists hang a dropdown; the seed's connectors
/// cap theirs the same way).
pub const MAX_ITEMS: usize = 10_000;

/// One choice of a picklist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    pub key: String,
    pub label: String,
}

fn items_of(result: &Value) -> Option<Vec<Item>> {
    // `{result: [...]}` (the seed's shape) or the list itself.
    let list = result.get("result").unwrap_or(result).as_array()?;
    list.iter()
        .take(MAX_ITEMS)
        .map(|item| match item {
            Value::String(key) => Some(Item {
                key: key.clone(),
                label: key.clone(),
            }),
            Value::Object(fields) => {
                let key = fields.get("key")?.as_str()?.to_string();
                let label = fields
                    .get("label")
                    .and_then(Value::as_str)
                    .unwrap_or(&key)
                    .to_string();
                Some(Item { key, label })
            }
            _ => None,
        })
        .collect()
}

/// Runs the data source of `instance`'s config variable `key` and returns its items.
pub async fn items(
    state: &AppState,
    instance: &Instance,
    compiled: &CompiledIntegration,
    key: &str,
) -> Result<Vec<Item>, ApiError> {
    let var = compiled
        .definition
        .config_vars
        .iter()
        .find(|var| var.key == key)
        .ok_or_else(|| ApiError::not_found(format!("config variable `{key}`")))?;
    let reference = var
        .data_source
        .as_ref()
        .ok_or_else(|| ApiError::invalid(format!("config variable `{key}` has no data source")))?;
    let entry = compiled
        .components
        .get(&reference.component)
        .ok_or_else(|| {
            ApiError::internal(format!("component `{}` is not pinned", reference.component))
        })?;
    let env = crate::instances::environment(
        state,
        instance,
        &format!("{}-data-source-{key}", instance.id),
        Arc::new(crate::instances::CallLog),
        Limits::default(),
    )
    .await?;
    let report = state
        .runtime
        .execute(
            &entry.component,
            Call::DataSource {
                name: reference.key.clone(),
                input: "{}".into(),
            },
            env.context,
            &env.capabilities,
            &env.limits,
        )
        .await
        .map_err(|err| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                format!("the data source could not run: {err}"),
            )
        })?;
    let failed = |message: String| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "data-source-failed",
            format!(
                "the data source `{}` of `{}` failed: {message}",
                reference.key, reference.component
            ),
        )
    };
    match report.outcome {
        Outcome::Completed {
            result: Returned::DataSource(text),
        } => {
            let result: Value = serde_json::from_str(&text)
                .map_err(|err| failed(format!("it returned invalid JSON: {err}")))?;
            items_of(&result).ok_or_else(|| {
                failed("it did not return a list of `{key, label}` items or strings".into())
            })
        }
        Outcome::GuestError { error } => Err(failed(error.to_string())),
        other => Err(failed(other.status().to_string())),
    }
}

/// Checks that every value of a variable with a data source is one of its items.
pub async fn check_values(
    state: &AppState,
    instance: &Instance,
    compiled: &CompiledIntegration,
) -> Result<(), ApiError> {
    for var in &compiled.definition.config_vars {
        if var.data_source.is_none() {
            continue;
        }
        let Some(value) = instance.config.get(&var.key) else {
            continue;
        };
        let items = items(state, instance, compiled, &var.key).await?;
        let chosen = value.as_str().unwrap_or_default();
        if !items.iter().any(|item| item.key == chosen) {
            return Err(ApiError::invalid(format!(
                "`config.{}`: {value} is not one of the values its data source lists",
                var.key
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_both_picklist_shapes() {
        let items = items_of(&json!({"result": ["a", {"key": "b", "label": "B"}]})).unwrap();
        assert_eq!(
            items[1],
            Item {
                key: "b".into(),
                label: "B".into()
            }
        );
        assert_eq!(items_of(&json!([{"key": "c"}])).unwrap()[0].label, "c");
        assert!(items_of(&json!({"result": [1]})).is_none());
        assert!(items_of(&json!("x")).is_none());
    }
}

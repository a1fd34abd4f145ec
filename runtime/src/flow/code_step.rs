//! Inline code steps at publish time: every step's JavaScript compiled by the code
//! engine (its `check` action) without running it, so a syntax error is reported with
//! the step's path before anything is deployed. At run time a code step is an action
//! call of the engine (see `validate/code.rs`).

use std::time::Duration;

use crate::flow::catalog::CatalogEntry;
use crate::flow::plan::CodeStepSource;
use crate::flow::validate::ValidationError;
use crate::{
    Call, Capabilities, Data, ExecutionContext, GuestErrorKind, Limits, Outcome, Returned, Runtime,
};

/// What checking a definition's code steps may take, all of them in one sandbox:
/// compiling a 64 KiB function takes a small part.
fn check_limits() -> Limits {
    Limits::default()
        .fuel(2_000_000_000)
        .timeout(Duration::from_secs(10))
}

/// Compiles each code step's function in `engine`, all in one call; returns the
/// problems found, each at its step's `code` path. The engine runs with no
/// capabilities at all.
pub async fn check_code_steps(
    runtime: &Runtime,
    engine: &CatalogEntry,
    steps: &[CodeStepSource],
) -> Vec<ValidationError> {
    if steps.is_empty() {
        return Vec::new();
    }
    let sources: Vec<&str> = steps.iter().map(|step| step.code.as_str()).collect();
    let input = serde_json::json!({ "sources": sources }).to_string();
    let report = runtime
        .execute(
            &engine.component,
            Call::Action {
                action: "check".into(),
                input,
            },
            ExecutionContext {
                execution_id: "code-check".into(),
                attempt: 1,
                ..ExecutionContext::default()
            },
            &Capabilities::default(),
            &check_limits(),
        )
        .await;
    // Why none could be checked, reported at every step.
    let all_failed = |why: String| -> Vec<ValidationError> {
        steps
            .iter()
            .map(|step| {
                ValidationError::at(step.path.clone(), format!("could not be checked: {why}"))
            })
            .collect()
    };
    let outcome = match report {
        Err(err) => return all_failed(err.to_string()),
        Ok(report) => report.outcome,
    };
    let text = match outcome {
        Outcome::Completed {
            result: Returned::Output(output),
        } => match output.data {
            Data::Json(text) => text,
            Data::Bytes(_) => return all_failed("the code engine answered bytes".into()),
        },
        Outcome::GuestError { error } if error.kind == GuestErrorKind::InvalidInput => {
            return all_failed(error.message);
        }
        other => {
            return all_failed(format!("the code engine ended with {}", other.status()));
        }
    };
    let errors: Vec<Option<String>> = match serde_json::from_str(&text) {
        Ok(errors) => errors,
        Err(err) => return all_failed(format!("the code engine's answer is not a list: {err}")),
    };
    if errors.len() != steps.len() {
        return all_failed(format!(
            "the code engine answered for {} of {} steps",
            errors.len(),
            steps.len()
        ));
    }
    steps
        .iter()
        .zip(errors)
        .filter_map(|(step, error)| {
            error.map(|message| ValidationError::at(step.path.clone(), message))
        })
        .collect()
}

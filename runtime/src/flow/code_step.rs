//! Inline code steps at publish time: every step's JavaScript compiled by the code
//! engine (its `check` action) without running it, so a syntax error is reported with
//! the step's path before anything is deployed. At run time a code step is an action
//! call of the engine (see `validate/code.rs`).

use std::time::Duration;

use crate::flow::catalog::CatalogEntry;
use crate::flow::plan::CodeStepSource;
use crate::flow::validate::ValidationError;
use crate::{Call, Capabilities, ExecutionContext, GuestErrorKind, Limits, Outcome, Runtime};

/// What checking one step may take: compiling a 64 KiB function takes a small part.
fn check_limits() -> Limits {
    Limits::default()
        .fuel(2_000_000_000)
        .timeout(Duration::from_secs(10))
}

/// Compiles each code step's function in `engine`; returns the problems found, each at
/// its step's `code` path. The engine runs with no capabilities at all.
pub async fn check_code_steps(
    runtime: &Runtime,
    engine: &CatalogEntry,
    steps: &[CodeStepSource],
) -> Vec<ValidationError> {
    let mut errors = Vec::new();
    for (index, step) in steps.iter().enumerate() {
        let input = serde_json::json!({ "code": step.code }).to_string();
        let report = runtime
            .execute(
                &engine.component,
                Call::Action {
                    action: "check".into(),
                    input,
                },
                ExecutionContext {
                    execution_id: format!("code-check-{index}"),
                    attempt: 1,
                    ..ExecutionContext::default()
                },
                &Capabilities::default(),
                &check_limits(),
            )
            .await;
        let problem = match report {
            Err(err) => Some(format!("could not be checked: {err}")),
            Ok(report) => match report.outcome {
                Outcome::Completed { .. } => None,
                Outcome::GuestError { error } if error.kind == GuestErrorKind::InvalidInput => {
                    Some(error.message)
                }
                other => Some(format!(
                    "could not be checked: the code engine ended with {}",
                    other.status()
                )),
            },
        };
        if let Some(message) = problem {
            errors.push(ValidationError::at(step.path.clone(), message));
        }
    }
    errors
}

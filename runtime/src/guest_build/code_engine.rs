//! Builds the code-step engine (`runtime/code-engine`, a JavaScript project built with
//! the JS SDK's `sluice-build`) for tests and benchmarks, as [`super::js`] builds any
//! JavaScript project: once per process, and again only when a source changed.

use std::path::PathBuf;

use super::{GuestBuildError, js, workspace_dir};

/// The directory of the engine's project.
pub fn engine_dir() -> PathBuf {
    workspace_dir().join("runtime").join("code-engine")
}

/// The code engine component (npm and about half a minute the first time).
pub fn code_engine() -> Result<PathBuf, GuestBuildError> {
    js::build_js_project(engine_dir())
}

//! Builds the code-step engine (`runtime/code-engine`, JavaScript built with
//! componentize-js through its `build.sh`) for tests and benchmarks. The result is
//! named by a hash of its sources (the engine, the lockfile, the WIT), so a later
//! process reuses it and a changed source rebuilds it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::{GuestBuildError, guest_target_dir, workspace_dir};
use crate::ContentHash;

fn engine_dir() -> PathBuf {
    workspace_dir().join("runtime").join("code-engine")
}

/// What the built engine depends on, hashed.
fn sources_hash() -> Result<String, GuestBuildError> {
    let mut files = vec![
        engine_dir().join("engine.js"),
        engine_dir().join("package-lock.json"),
        engine_dir().join("build.sh"),
    ];
    let wit = workspace_dir().join("wit");
    for dir in [wit.clone(), wit.join("deps")] {
        let entries = std::fs::read_dir(&dir)
            .map_err(|err| GuestBuildError(format!("{}: {err}", dir.display())))?;
        for entry in entries.flatten() {
            if entry.path().extension().is_some_and(|ext| ext == "wit") {
                files.push(entry.path());
            }
        }
    }
    files.sort();
    let mut all = Vec::new();
    for file in &files {
        let bytes = std::fs::read(file)
            .map_err(|err| GuestBuildError(format!("{}: {err}", file.display())))?;
        all.extend_from_slice(file_name(file).as_bytes());
        all.extend_from_slice(&ContentHash::of(&bytes).to_hex().into_bytes());
    }
    Ok(ContentHash::of(&all).short())
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The code engine component, built once for its current sources (it takes npm and
/// about half a minute the first time).
pub fn code_engine() -> Result<PathBuf, GuestBuildError> {
    static BUILT: OnceLock<Result<PathBuf, GuestBuildError>> = OnceLock::new();
    BUILT.get_or_init(build).clone()
}

fn build() -> Result<PathBuf, GuestBuildError> {
    let out = guest_target_dir()
        .join("code-engine")
        .join(format!("sluice-code-{}.wasm", sources_hash()?));
    if out.is_file() {
        return Ok(out);
    }
    let script = engine_dir().join("build.sh");
    let output = Command::new("bash")
        .arg(&script)
        .arg(&out)
        .output()
        .map_err(|err| GuestBuildError(format!("cannot run {}: {err}", script.display())))?;
    if !output.status.success() || !out.is_file() {
        return Err(GuestBuildError(format!(
            "building the code engine ({}) failed:\n{}",
            script.display(),
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    Ok(out)
}

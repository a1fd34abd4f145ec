//! Builds JavaScript/TypeScript guests (projects on `@sluice/sdk`, `guest-sdk/js`) into
//! components for tests: installs their npm dependencies from the committed lockfiles
//! (`npm ci`), then runs the SDK's `sluice-build` (esbuild, then componentize-js) into
//! `<target dir>/js-guests/<name>.wasm`. Once per process, and not at all when the
//! `.wasm` is newer than every source it is built from.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::SystemTime;

use super::{GuestBuildError, examples_dir, guest_target_dir, workspace_dir};

/// The SDK package, `guest-sdk/js`.
pub fn sdk_dir() -> PathBuf {
    workspace_dir().join("guest-sdk").join("js")
}

/// Where JavaScript guests are built: `<target dir>/js-guests`.
pub fn js_target_dir() -> PathBuf {
    // `guest_target_dir` is `<target>/guests`; its parent is the target directory.
    guest_target_dir()
        .parent()
        .map_or_else(|| PathBuf::from("target"), Path::to_path_buf)
        .join("js-guests")
}

/// The JavaScript example `examples/<name>` (e.g. `zendesk-ts`), built.
pub fn js_example(name: &str) -> Result<PathBuf, GuestBuildError> {
    build_js_project(examples_dir().join(name))
}

/// Builds the JavaScript/TypeScript project in `project_dir` (a `package.json` that
/// depends on `@sluice/sdk`, a lockfile, sources) and returns the path of its `.wasm`.
/// The world and entry point come from the project's `package.json` (`"sluice"`).
pub fn build_js_project(project_dir: impl AsRef<Path>) -> Result<PathBuf, GuestBuildError> {
    static BUILT: OnceLock<Mutex<HashMap<PathBuf, Result<PathBuf, GuestBuildError>>>> =
        OnceLock::new();
    let project = project_dir
        .as_ref()
        .canonicalize()
        .map_err(|err| GuestBuildError(format!("{}: {err}", project_dir.as_ref().display())))?;
    let built = BUILT.get_or_init(Default::default);
    // Held across the build: tests of one process share one build of each project.
    let mut built = built.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(result) = built.get(&project) {
        return result.clone();
    }
    let result = build(&project);
    built.insert(project, result.clone());
    result
}

fn build(project: &Path) -> Result<PathBuf, GuestBuildError> {
    check_npm()?;
    let target = js_target_dir();
    std::fs::create_dir_all(&target)
        .map_err(|err| GuestBuildError(format!("creating {}: {err}", target.display())))?;
    // Another test process may be installing or building the same projects: one at a
    // time (npm ci deletes node_modules first).
    let lock = File::create(target.join(".lock"))
        .map_err(|err| GuestBuildError(format!("creating the build lock: {err}")))?;
    lock.lock()
        .map_err(|err| GuestBuildError(format!("taking the build lock: {err}")))?;

    let sdk = sdk_dir();
    npm_ci(&sdk)?;
    npm_ci(project)?;

    let name = project
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "guest".into());
    let out = target.join(format!("{name}.wasm"));
    let inputs = [
        project.join("src"),
        project.join("package.json"),
        project.join("package-lock.json"),
        sdk.join("src"),
        sdk.join("bin"),
        sdk.join("package-lock.json"),
        workspace_dir().join("wit"),
    ];
    if let Ok(built) = std::fs::metadata(&out).and_then(|m| m.modified())
        && inputs.iter().all(|input| newest(input) <= Some(built))
    {
        return Ok(out);
    }
    eprintln!(
        "building the JavaScript guest {} into {}",
        project.display(),
        out.display()
    );
    let output = Command::new("node")
        .arg(sdk.join("bin").join("sluice-build.mjs"))
        .arg(project)
        .arg("--out")
        .arg(&out)
        .current_dir(project)
        .output()
        .map_err(|err| GuestBuildError(format!("cannot run node: {err}")))?;
    check(&output, &format!("sluice-build of {}", project.display()))?;
    Ok(out)
}

/// Runs `npm ci` in `dir` unless `node_modules` was installed from this very lockfile.
fn npm_ci(dir: &Path) -> Result<(), GuestBuildError> {
    let lockfile = dir.join("package-lock.json");
    let lock = std::fs::read(&lockfile).map_err(|err| {
        GuestBuildError(format!(
            "{}: {err} (commit the lockfile: `npm install` writes it)",
            lockfile.display()
        ))
    })?;
    // A copy of the lockfile node_modules was installed from.
    let stamp = dir.join("node_modules").join(".sluice-installed-lock.json");
    if std::fs::read(&stamp).is_ok_and(|installed| installed == lock) {
        return Ok(());
    }
    eprintln!("npm ci in {}", dir.display());
    let output = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .env("npm_config_update_notifier", "false")
        .output()
        .map_err(|err| GuestBuildError(format!("cannot run npm: {err}")))?;
    check(&output, &format!("`npm ci` in {}", dir.display()))?;
    std::fs::write(&stamp, lock)
        .map_err(|err| GuestBuildError(format!("writing {}: {err}", stamp.display())))
}

fn check_npm() -> Result<(), GuestBuildError> {
    let found = Command::new("npm")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success());
    if found {
        Ok(())
    } else {
        Err(GuestBuildError(
            "npm is not installed (or not on PATH): JavaScript guests need Node.js 20 or later \
             with npm (https://nodejs.org); install it and rerun"
                .into(),
        ))
    }
}

fn check(output: &Output, what: &str) -> Result<(), GuestBuildError> {
    if output.status.success() {
        return Ok(());
    }
    Err(GuestBuildError(format!(
        "{what} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )))
}

/// The newest modification time of `path` and, for a directory, of everything in it.
fn newest(path: &Path) -> Option<SystemTime> {
    let metadata = std::fs::metadata(path).ok()?;
    let mut newest = metadata.modified().ok();
    if metadata.is_dir() {
        for entry in std::fs::read_dir(path).ok()?.flatten() {
            newest = newest.max(self::newest(&entry.path()));
        }
    }
    newest
}

//! Builds Python guests (projects on the Python SDK, `guest-sdk/python`) into
//! components with componentize-py, so tests run them through the real sandbox like
//! the Rust examples. Owns the build's Python environment: a venv under
//! `<target dir>/python/venv` with the pinned componentize-py, created on first use.
//!
//! A component is built once per process and cached across processes under
//! `<target dir>/python/guests/<name>-<hash>.wasm`, where the hash covers the
//! project's and the SDK's Python files, the WIT and the componentize-py version, so a
//! change to any of them rebuilds and nothing stale is reused.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock, PoisonError};

use sha2::{Digest, Sha256};

use super::{GuestBuildError, examples_dir, guest_target_dir, workspace_dir};

/// The componentize-py release the SDK is written against (`sluice_sdk.COMPONENTIZE_PY_VERSION`).
pub const COMPONENTIZE_PY_VERSION: &str = "0.25.1";

/// `<target dir>/python`: the venv and the built Python guests.
fn python_dir() -> PathBuf {
    guest_target_dir().with_file_name("python")
}

/// The Python SDK's directory (`guest-sdk/python`).
pub fn sdk_dir() -> PathBuf {
    workspace_dir().join("guest-sdk").join("python")
}

/// The Python example `name` (a directory under `examples/`, e.g. `text-py`), built.
pub fn python_example(name: &str) -> Result<PathBuf, GuestBuildError> {
    build_python_component(examples_dir().join(name))
}

/// Builds the Python project in `project_dir` (its `pyproject.toml` names the module
/// and world under `[tool.sluice]`) with `python -m sluice_sdk.build`, once per
/// process, and returns the path of its `.wasm`.
pub fn build_python_component(project_dir: impl AsRef<Path>) -> Result<PathBuf, GuestBuildError> {
    static BUILT: OnceLock<Mutex<HashMap<PathBuf, PathBuf>>> = OnceLock::new();
    let project = project_dir
        .as_ref()
        .canonicalize()
        .map_err(|err| GuestBuildError(format!("{}: {err}", project_dir.as_ref().display())))?;
    // Held across the build: two tests must not race two builds of one project.
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(path) = built.get(&project) {
        return Ok(path.clone());
    }
    let python = venv_python()?;
    let name = project
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "guest".into());
    let hash = source_hash(&project)?;
    let guests = python_dir().join("guests");
    let output = guests.join(format!("{name}-{}.wasm", &hash[..16]));
    if !output.is_file() {
        fs::create_dir_all(&guests).map_err(|err| io_error(&guests, err))?;
        // Written beside and renamed: another process may build the same project.
        let partial = guests.join(format!(
            "{name}-{}.{}.partial",
            &hash[..16],
            std::process::id()
        ));
        eprintln!(
            "building Python guest {} with componentize-py",
            project.display()
        );
        let result = Command::new(&python)
            .args(["-m", "sluice_sdk.build"])
            .arg(&project)
            .arg("-o")
            .arg(&partial)
            .arg("--wit")
            .arg(workspace_dir().join("wit"))
            .env("PYTHONPATH", sdk_dir())
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .output()
            .map_err(|err| GuestBuildError(format!("cannot run {}: {err}", python.display())))?;
        if !result.status.success() {
            let _ = fs::remove_file(&partial);
            return Err(GuestBuildError(format!(
                "building the Python guest {} failed:\n{}{}",
                project.display(),
                String::from_utf8_lossy(&result.stdout),
                String::from_utf8_lossy(&result.stderr)
            )));
        }
        fs::rename(&partial, &output).map_err(|err| io_error(&output, err))?;
        remove_older_builds(&guests, &name, &output);
    }
    built.insert(project, output.clone());
    Ok(output)
}

/// The build venv's interpreter (with the pinned componentize-py), creating the venv on
/// first use: what builds Python guests, and runs the SDK's native unit tests.
pub fn venv_python() -> Result<PathBuf, GuestBuildError> {
    static VENV: OnceLock<Result<PathBuf, GuestBuildError>> = OnceLock::new();
    VENV.get_or_init(create_venv).clone()
}

fn create_venv() -> Result<PathBuf, GuestBuildError> {
    let venv = python_dir().join(format!("venv-componentize-py-{COMPONENTIZE_PY_VERSION}"));
    let python = venv.join("bin").join("python");
    if has_componentize_py(&venv) {
        return Ok(python);
    }
    let system_python = std::env::var_os("PYTHON").unwrap_or_else(|| "python3".into());
    check_interpreter(&system_python)?;
    // Built in a directory of its own and renamed into place, so a concurrent test
    // process never sees a half-installed venv. A venv moves fine as long as it is run
    // as `venv/bin/python` (the SDK's build runs componentize-py through it).
    let parent = python_dir();
    fs::create_dir_all(&parent).map_err(|err| io_error(&parent, err))?;
    let staging = parent.join(format!("venv.{}.partial", std::process::id()));
    let _ = fs::remove_dir_all(&staging);
    eprintln!(
        "creating a Python venv with componentize-py {COMPONENTIZE_PY_VERSION} in {}",
        venv.display()
    );
    run(Command::new(&system_python)
        .args(["-m", "venv"])
        .arg(&staging))?;
    run(Command::new(staging.join("bin").join("python")).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        &format!("componentize-py=={COMPONENTIZE_PY_VERSION}"),
    ]))?;
    if fs::rename(&staging, &venv).is_err() {
        // Another process installed it first: use that one.
        let _ = fs::remove_dir_all(&staging);
    }
    if has_componentize_py(&venv) {
        Ok(python)
    } else {
        Err(GuestBuildError(format!(
            "componentize-py {COMPONENTIZE_PY_VERSION} is not usable in {} after installing it",
            venv.display()
        )))
    }
}

/// Checks that `python` runs and is 3.11 or later (the SDK's build reads
/// pyproject.toml with `tomllib`), with an error that says what to install.
fn check_interpreter(python: &OsStr) -> Result<(), GuestBuildError> {
    let shown = python.to_string_lossy();
    let version = Command::new(python)
        .args(["-c", "import sys; print(sys.version_info >= (3, 11))"])
        .output()
        .map_err(|err| {
            GuestBuildError(format!(
                "cannot run {shown} ({err}): building Python guests needs Python 3.11 or later \
                 with venv (Debian: apt-get install python3 python3-venv); set PYTHON to its \
                 path if it is not `python3` on PATH"
            ))
        })?;
    if String::from_utf8_lossy(&version.stdout).trim() == "True" {
        Ok(())
    } else {
        Err(GuestBuildError(format!(
            "{shown} is not Python 3.11 or later, which building Python guests needs"
        )))
    }
}

fn has_componentize_py(venv: &Path) -> bool {
    Command::new(venv.join("bin").join("python"))
        .args([
            "-c",
            "import importlib.metadata as m; print(m.version('componentize-py'))",
        ])
        .output()
        .is_ok_and(|output| {
            String::from_utf8_lossy(&output.stdout).trim() == COMPONENTIZE_PY_VERSION
        })
}

fn run(command: &mut Command) -> Result<(), GuestBuildError> {
    let output = command
        .output()
        .map_err(|err| GuestBuildError(format!("cannot run {command:?}: {err}")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(GuestBuildError(format!(
            "{command:?} failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )))
    }
}

/// Deletes the other builds of `name` (of sources since changed): each is ~19 MB.
fn remove_older_builds(guests: &Path, name: &str, keep: &Path) {
    let Ok(entries) = fs::read_dir(guests) else {
        return;
    };
    let prefix = format!("{name}-");
    for path in entries.filter_map(|entry| entry.ok().map(|entry| entry.path())) {
        let file = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        // The hash after the prefix has no `-`, so `text-py-…` never matches `text-…`.
        let is_build = file
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(".wasm"))
            .is_some_and(|hash| !hash.contains('-'));
        if is_build && path != keep {
            let _ = fs::remove_file(&path);
        }
    }
}

fn io_error(path: &Path, err: std::io::Error) -> GuestBuildError {
    GuestBuildError(format!("{}: {err}", path.display()))
}

/// A hash of everything a Python guest's build reads: the project's and the SDK's
/// `.py` and `.toml` files, the WIT files, and the componentize-py version.
fn source_hash(project: &Path) -> Result<String, GuestBuildError> {
    let mut files = Vec::new();
    for root in [
        project.to_path_buf(),
        sdk_dir(),
        workspace_dir().join("wit"),
    ] {
        collect(&root, &mut files)?;
    }
    files.sort();
    let mut hasher = Sha256::new();
    hasher.update(COMPONENTIZE_PY_VERSION.as_bytes());
    for file in files {
        hasher.update(file.to_string_lossy().as_bytes());
        hasher.update(fs::read(&file).map_err(|err| io_error(&file, err))?);
    }
    Ok(hex::encode(hasher.finalize()))
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), GuestBuildError> {
    for entry in fs::read_dir(dir).map_err(|err| io_error(dir, err))? {
        let path = entry.map_err(|err| io_error(dir, err))?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.starts_with('.') || name == "__pycache__" || name == "target" {
            continue;
        }
        // `sluice_sdk/wit` links to the WIT, which is hashed once from its own root.
        if path.is_symlink() {
            continue;
        }
        if path.is_dir() {
            collect(&path, files)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("py" | "toml" | "wit")
        ) {
            files.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_interpreter_says_what_to_install() {
        let err = check_interpreter(OsStr::new("/nonexistent/python3")).unwrap_err();
        assert!(err.0.contains("cannot run /nonexistent/python3"), "{err}");
        assert!(err.0.contains("Python 3.11 or later"), "{err}");
        assert!(err.0.contains("set PYTHON"), "{err}");
    }

    #[test]
    fn an_interpreter_that_is_not_python_is_refused() {
        // `true` runs but prints nothing: not a Python 3.11.
        let err = check_interpreter(OsStr::new("true")).unwrap_err();
        assert!(err.0.contains("is not Python 3.11 or later"), "{err}");
    }
}

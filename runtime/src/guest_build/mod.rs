//! Builds guests for wasm32-wasip2 so tests and benchmarks run real components: the
//! repository's examples (the workspace members under `examples/`), or any author's
//! crate ([`build_component`]). Installs the Rust target with rustup when it is
//! missing. Enabled by the `guest-build` feature; not for production hosts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock, PoisonError};

pub mod js;
pub mod python;

const TARGET: &str = "wasm32-wasip2";
/// The cargo profile guests build with (see the root `Cargo.toml`).
const PROFILE: &str = "guest";

/// Building the examples failed; the message says what to do.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot build the example guests: {0}")]
pub struct GuestBuildError(String);

pub mod code_engine;

fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `examples/` directory of the repository.
pub fn examples_dir() -> PathBuf {
    workspace_dir().join("examples")
}

/// Where the guests are built: `<target dir>/guests`, next to the host's artifacts so a
/// CI cache of the target directory keeps them too. A separate directory also keeps
/// this nested cargo from waiting on the lock of the build that runs the tests.
pub fn guest_target_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_dir().join("target"));
    target.join("guests")
}

/// Builds every example (once per process) and returns the directory of the `.wasm` files.
pub fn build_examples() -> Result<PathBuf, GuestBuildError> {
    static BUILT: OnceLock<Result<PathBuf, GuestBuildError>> = OnceLock::new();
    BUILT.get_or_init(build).clone()
}

/// The path of the example `name` (e.g. `hello`, `memory-bomb`), building it if needed.
pub fn example(name: &str) -> Result<PathBuf, GuestBuildError> {
    let path = build_examples()?.join(format!("{}.wasm", name.replace('-', "_")));
    if path.is_file() {
        Ok(path)
    } else {
        Err(GuestBuildError(format!(
            "no example guest named `{name}` ({} is missing)",
            path.display()
        )))
    }
}

/// Builds the component crate whose `Cargo.toml` is in `crate_dir` (usually
/// `env!("CARGO_MANIFEST_DIR")` in the crate's own tests) for wasm32-wasip2 in release
/// mode, once per process, and returns the path of its `.wasm`.
///
/// The build goes to `<target dir>/sluice-harness`, a directory of its own, so it does
/// not wait on the lock of the `cargo test` that runs it.
pub fn build_component(crate_dir: impl AsRef<Path>) -> Result<PathBuf, GuestBuildError> {
    static BUILT: OnceLock<Mutex<HashMap<PathBuf, PathBuf>>> = OnceLock::new();
    let crate_dir = crate_dir
        .as_ref()
        .canonicalize()
        .map_err(|err| GuestBuildError(format!("{}: {err}", crate_dir.as_ref().display())))?;
    let built = BUILT.get_or_init(Default::default);
    // Held across the build: two tests of one crate must not race two cargo builds.
    let mut built = built.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(path) = built.get(&crate_dir) {
        return Ok(path.clone());
    }
    ensure_target()?;
    let manifest = crate_dir.join("Cargo.toml");
    let metadata = metadata(&manifest)?;
    let package = metadata["packages"]
        .as_array()
        .and_then(|packages| {
            packages.iter().find(|package| {
                package["manifest_path"]
                    .as_str()
                    .is_some_and(|path| Path::new(path) == manifest)
            })
        })
        .ok_or_else(|| GuestBuildError(format!("no package in {}", manifest.display())))?;
    let artifact = component_target_name(package).ok_or_else(|| {
        GuestBuildError(format!(
            "{} has no cdylib or bin target: set `crate-type = [\"cdylib\"]` under [lib]",
            manifest.display()
        ))
    })?;
    let target_dir = metadata["target_directory"]
        .as_str()
        .map(|dir| Path::new(dir).join("sluice-harness"))
        .ok_or_else(|| GuestBuildError("cargo metadata names no target directory".into()))?;
    let output = cargo()
        .args(["build", "--release", "--target", TARGET, "--manifest-path"])
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", &target_dir)
        .output()
        .map_err(|err| GuestBuildError(format!("cannot run cargo: {err}")))?;
    if !output.status.success() {
        return Err(GuestBuildError(format!(
            "`cargo build --target {TARGET}` of {} failed:\n{}",
            manifest.display(),
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    let path = target_dir
        .join(TARGET)
        .join("release")
        .join(format!("{}.wasm", artifact.replace('-', "_")));
    built.insert(crate_dir, path.clone());
    Ok(path)
}

/// The name of the target that becomes the component: the cdylib, or else a binary.
fn component_target_name(package: &serde_json::Value) -> Option<String> {
    let targets = package["targets"].as_array()?;
    let of_kind = |wanted: &str| {
        targets.iter().find(|target| {
            target["kind"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|kind| kind == wanted))
        })
    };
    of_kind("cdylib")
        .or_else(|| of_kind("bin"))
        .and_then(|target| target["name"].as_str().map(str::to_string))
}

fn metadata(manifest: &Path) -> Result<serde_json::Value, GuestBuildError> {
    let output = cargo()
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--manifest-path",
        ])
        .arg(manifest)
        .output()
        .map_err(|err| GuestBuildError(format!("cannot run cargo metadata: {err}")))?;
    if !output.status.success() {
        return Err(GuestBuildError(format!(
            "`cargo metadata` failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    serde_json::from_slice(&output.stdout)
        .map_err(|err| GuestBuildError(format!("unreadable cargo metadata: {err}")))
}

fn cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command
        .current_dir(workspace_dir())
        // Flags meant for the host build must not leak into the guest build.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET");
    command
}

fn build() -> Result<PathBuf, GuestBuildError> {
    ensure_target()?;
    let packages = example_packages()?;
    let target_dir = guest_target_dir();
    eprintln!(
        "building {} example guests for {TARGET} into {}",
        packages.len(),
        target_dir.display()
    );
    let mut command = cargo();
    command
        .args(["build", "--profile", PROFILE, "--target", TARGET])
        .env("CARGO_TARGET_DIR", &target_dir);
    for package in &packages {
        command.args(["-p", package]);
    }
    let output = command
        .output()
        .map_err(|err| GuestBuildError(format!("cannot run cargo: {err}")))?;
    if !output.status.success() {
        return Err(GuestBuildError(format!(
            "`cargo build --target {TARGET}` of the examples failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    Ok(target_dir.join(TARGET).join(PROFILE))
}

/// Workspace members under `examples/` that produce a component (a cdylib or a binary),
/// but those whose manifest says `[package.metadata.sluice] guest = false`.
fn example_packages() -> Result<Vec<String>, GuestBuildError> {
    let metadata = metadata(&workspace_dir().join("Cargo.toml"))?;
    let examples = examples_dir()
        .canonicalize()
        .map_err(|err| GuestBuildError(format!("no examples directory: {err}")))?;
    let packages = metadata["packages"].as_array().cloned().unwrap_or_default();
    Ok(packages
        .iter()
        .filter(|package| {
            package["manifest_path"]
                .as_str()
                .is_some_and(|path| Path::new(path).starts_with(&examples))
        })
        .filter(|package| component_target_name(package).is_some())
        // Host-side tools among the examples (the fakes' binary) say they are not guests.
        .filter(|package| package["metadata"]["sluice"]["guest"].as_bool() != Some(false))
        .filter_map(|package| package["name"].as_str().map(str::to_string))
        .collect())
}

fn ensure_target() -> Result<(), GuestBuildError> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|output| {
            String::from_utf8_lossy(&output.stdout)
                .lines()
                .any(|line| line.trim() == TARGET)
        })
        .unwrap_or(false);
    if installed {
        return Ok(());
    }
    eprintln!("installing the {TARGET} Rust target with rustup");
    let status = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status()
        .map_err(|err| {
            GuestBuildError(format!(
                "cannot run rustup ({err}); install the target with `rustup target add {TARGET}`"
            ))
        })?;
    if status.success() {
        Ok(())
    } else {
        Err(GuestBuildError(format!(
            "`rustup target add {TARGET}` failed; install the target by hand and rerun"
        )))
    }
}

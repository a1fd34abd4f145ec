//! Builds the repository's example guests (`examples/`, a wasm32-wasip2 workspace) so
//! tests and benchmarks run real components. Installs the Rust target with rustup when
//! it is missing. Enabled by the `guest-build` feature; not for production hosts.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const TARGET: &str = "wasm32-wasip2";

/// Building the examples failed; the message says what to do.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot build the example guests: {0}")]
pub struct GuestBuildError(String);

/// The `examples/` directory of the repository.
pub fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("examples")
}

/// Where the guests are built: `<target dir>/guests`, next to the host's artifacts so a
/// CI cache of the target directory keeps them too.
pub fn guest_target_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("target")
        });
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

fn build() -> Result<PathBuf, GuestBuildError> {
    ensure_target()?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target_dir = guest_target_dir();
    let manifest = examples_dir().join("Cargo.toml");
    eprintln!(
        "building example guests for {TARGET} into {}",
        target_dir.display()
    );
    let output = Command::new(cargo)
        .args(["build", "--release", "--target", TARGET, "--manifest-path"])
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", &target_dir)
        // Flags meant for the host build must not leak into the guest build.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .output()
        .map_err(|err| GuestBuildError(format!("cannot run cargo: {err}")))?;
    if !output.status.success() {
        return Err(GuestBuildError(format!(
            "`cargo build` of {} failed:\n{}",
            manifest.display(),
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    Ok(target_dir.join(TARGET).join("release"))
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

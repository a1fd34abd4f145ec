//! Structural checks run on an uploaded binary before anything is compiled: that it is
//! a component (not a core module or random bytes), which Sluice [`World`] it exports,
//! and that every import is one Sluice provides to that world.
//!
//! Type-checking of the imports and exports against the WIT happens afterwards, when
//! the linker pre-instantiates the compiled component (see `artifacts`).

use std::fmt;

use serde::{Deserialize, Serialize};
use wasmtime::wasmparser::{Parser, Payload};

use crate::error::LoadError;

/// The Sluice world a component implements.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    bincode::Encode,
    bincode::Decode,
)]
#[serde(rename_all = "kebab-case")]
pub enum World {
    /// A connector (`world component`, exports `sluice:flow/connector`).
    Component,
    /// A code-native flow (`world flow`, exports `sluice:flow/code-flow`).
    Flow,
}

impl World {
    /// The WIT world name.
    pub fn name(self) -> &'static str {
        match self {
            World::Component => "component",
            World::Flow => "flow",
        }
    }
}

impl fmt::Display for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the structural check learned about a component.
#[derive(Debug, Clone)]
pub(crate) struct Inspection {
    pub(crate) world: World,
    /// Import names as written in the binary, versions included.
    pub(crate) imports: Vec<String>,
}

const CONNECTOR_EXPORT: &str = "sluice:flow/connector";
const CODE_FLOW_EXPORT: &str = "sluice:flow/code-flow";

/// Interfaces every guest may import (names without their `@version`).
///
/// Rust's standard library for `wasm32-wasip2` imports the `wasi:cli` interfaces
/// (environment, exit, stdio, terminals) even in guests that never use them, so they
/// are accepted and backed by empty implementations: no environment variables, no
/// arguments, stdin at end-of-file, no terminal, stdout and stderr captured into the
/// execution's log. The JavaScript and Python runtimes also import `wasi:filesystem`
/// and `wasi:sockets`, so those are accepted as inert capabilities: no directory is
/// preopened and every socket use is refused (`capabilities::link`).
const ALLOWED_IMPORTS: &[&str] = &[
    "sluice:flow/types",
    "sluice:flow/log",
    "sluice:flow/state",
    "sluice:flow/connections",
    "sluice:flow/config",
    "sluice:flow/context",
    "wasi:http/types",
    "wasi:http/outgoing-handler",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:clocks/wall-clock",
    "wasi:clocks/monotonic-clock",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:filesystem/types",
    "wasi:filesystem/preopens",
    "wasi:sockets/network",
    "wasi:sockets/instance-network",
    "wasi:sockets/tcp",
    "wasi:sockets/tcp-create-socket",
    "wasi:sockets/udp",
    "wasi:sockets/udp-create-socket",
    "wasi:sockets/ip-name-lookup",
];

/// Imports only the `flow` world may use.
const FLOW_ONLY_IMPORTS: &[&str] = &["sluice:flow/invoker"];

/// The structural check of an upload on its own: which Sluice [`World`] the bytes
/// implement, or why they are refused. What the registry runs on every upload before
/// compiling it (and what the component validator's fuzz target calls).
pub fn check_component(bytes: &[u8]) -> Result<World, LoadError> {
    inspect(bytes).map(|inspection| inspection.world)
}

/// Checks the binary's header, finds its world, and checks its imports.
pub(crate) fn inspect(bytes: &[u8]) -> Result<Inspection, LoadError> {
    check_header(bytes)?;
    let mut imports = Vec::new();
    let mut exports = Vec::new();
    // `parse_all` walks nested modules and components too; only depth 0 is the
    // component's own interface.
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|err| LoadError::Malformed(err.to_string()))?;
        match payload {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    let import = import.map_err(|err| LoadError::Malformed(err.to_string()))?;
                    imports.push(import.name.name.to_string());
                }
            }
            Payload::ComponentExportSection(reader) if depth == 0 => {
                for export in reader {
                    let export = export.map_err(|err| LoadError::Malformed(err.to_string()))?;
                    exports.push(export.name.name.to_string());
                }
            }
            _ => {}
        }
    }

    let exports_unversioned: Vec<&str> = exports.iter().map(|name| unversioned(name)).collect();
    let world = if exports_unversioned.contains(&CONNECTOR_EXPORT) {
        World::Component
    } else if exports_unversioned.contains(&CODE_FLOW_EXPORT) {
        World::Flow
    } else {
        let exports = if exports.is_empty() {
            "nothing".to_string()
        } else {
            exports
                .iter()
                .map(|name| format!("`{name}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(LoadError::NotSluice { exports });
    };

    for import in &imports {
        check_import(world, import)?;
    }
    Ok(Inspection { world, imports })
}

fn check_header(bytes: &[u8]) -> Result<(), LoadError> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(LoadError::NotWasm(
            "the file does not start with the WebAssembly magic bytes `\\0asm`".into(),
        ));
    }
    // Bytes 4..8 are a version and a layer: layer 0 is a core module, layer 1 a component.
    match u16::from_le_bytes([bytes[6], bytes[7]]) {
        0 => Err(LoadError::CoreModule),
        1 => Ok(()),
        layer => Err(LoadError::NotWasm(format!(
            "unknown WebAssembly layer {layer} (expected 1, a component)"
        ))),
    }
}

fn check_import(world: World, import: &str) -> Result<(), LoadError> {
    let name = unversioned(import);
    if ALLOWED_IMPORTS.contains(&name) {
        return Ok(());
    }
    if FLOW_ONLY_IMPORTS.contains(&name) {
        if world == World::Flow {
            return Ok(());
        }
        return Err(LoadError::ForbiddenImport {
            import: import.to_string(),
            hint: " to a component of world `component`: only code-native flows (world `flow`) \
                   may invoke components and flows"
                .into(),
        });
    }
    let hint = if name.starts_with("wasi:http/") {
        " (guests make HTTP requests through wasi:http/outgoing-handler; they serve none)"
            .to_string()
    } else {
        format!(
            " (a `{world}` guest may import only: {})",
            ALLOWED_IMPORTS
                .iter()
                .chain(if world == World::Flow {
                    FLOW_ONLY_IMPORTS
                } else {
                    &[]
                })
                .copied()
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    Err(LoadError::ForbiddenImport {
        import: import.to_string(),
        hint,
    })
}

/// `wasi:http/types@0.2.12` -> `wasi:http/types`.
fn unversioned(name: &str) -> &str {
    name.split_once('@').map_or(name, |(base, _)| base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_random_bytes_and_core_modules() {
        assert!(matches!(
            inspect(b"hello world, not wasm"),
            Err(LoadError::NotWasm(_))
        ));
        assert!(matches!(inspect(b""), Err(LoadError::NotWasm(_))));
        // The smallest valid core module: magic plus version 1.
        assert!(matches!(
            inspect(b"\0asm\x01\0\0\0"),
            Err(LoadError::CoreModule)
        ));
    }

    #[test]
    fn an_empty_component_is_not_a_sluice_world() {
        // Magic, version 0x0d, layer 1: a component with no sections.
        let err = inspect(b"\0asm\x0d\0\x01\0").unwrap_err();
        assert!(err.to_string().contains("exports nothing"), "{err}");
    }

    #[test]
    fn import_rules_depend_on_the_world() {
        assert!(check_import(World::Component, "wasi:http/outgoing-handler@0.2.0").is_ok());
        assert!(check_import(World::Flow, "sluice:flow/invoker@0.1.0").is_ok());
        let err = check_import(World::Component, "sluice:flow/invoker@0.1.0").unwrap_err();
        assert!(err.to_string().contains("only code-native flows"), "{err}");
        // Linked inert, for the JavaScript and Python runtimes that import them.
        assert!(check_import(World::Component, "wasi:sockets/tcp@0.2.0").is_ok());
        assert!(check_import(World::Component, "wasi:filesystem/preopens@0.2.12").is_ok());
        let err = check_import(World::Component, "wasi:keyvalue/store@0.2.0-draft").unwrap_err();
        assert!(
            err.to_string()
                .contains("`wasi:keyvalue/store@0.2.0-draft`"),
            "{err}"
        );
        let err = check_import(World::Component, "wasi:http/incoming-handler@0.2.12").unwrap_err();
        assert!(err.to_string().contains("serve none"), "{err}");
        let err = check_import(World::Component, "evil:host/exec").unwrap_err();
        assert!(err.to_string().contains("may import only"), "{err}");
    }
}

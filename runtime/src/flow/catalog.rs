//! Where flows find their components: the [`ComponentCatalog`] trait (a component key
//! and version → a loaded component and its parsed manifest), the manifest as the
//! engine needs it (input schemas compiled once), and [`MemoryCatalog`], which loads a
//! directory of `.wasm` files by asking each for its manifest.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use crate::{
    Call, Capabilities, ContentHash, ExecutionContext, Limits, LoadedComponent, Outcome, Returned,
    Runtime, World,
};

/// Why a component could not be added to a catalog.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot read {path}: {source}")]
    /// A component file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    #[error("cannot load {what}: {message}")]
    /// A component could not be compiled or loaded.
    Load {
        /// Names the component for the message (its file, for instance).
        what: String,
        /// Why it could not be loaded.
        message: String,
    },
    #[error("component {hash}: its manifest {message}")]
    /// A component's manifest is missing or malformed.
    Manifest {
        /// The component's short hash.
        hash: String,
        /// What is wrong with the manifest.
        message: String,
    },
    #[error(
        "component `{key}` version `{version}` is in the catalog twice, with hashes {first} and \
         {second}"
    )]
    /// Two components in the catalog have the same key and version but different bytes.
    Duplicate {
        /// The component key.
        key: String,
        /// The version both declare.
        version: String,
        /// The hash of the component added first.
        first: String,
        /// The hash of the other one.
        second: String,
    },
}

/// Checks an input object against an action's (or trigger's) input schema. Compiled
/// once per manifest.
#[derive(Clone)]
pub struct InputSchema {
    /// The schema as the manifest declares it.
    pub schema: Value,
    /// `None` when any object satisfies the schema (`{}`, `true`, `{"type":"object"}`),
    /// so checking can be skipped.
    validator: Option<Arc<jsonschema::Validator>>,
    /// The schema without `required`, to check the static part of a step's inputs.
    partial: Option<Arc<jsonschema::Validator>>,
    /// Declared input names, when the schema lists `properties` and allows nothing else.
    properties: Option<BTreeSet<String>>,
    required: Vec<String>,
}

impl std::fmt::Debug for InputSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InputSchema")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl InputSchema {
    /// Compiles `schema` (JSON Schema, draft 2020-12 unless it says otherwise).
    pub fn new(schema: Value) -> Result<InputSchema, String> {
        let trivial = match &schema {
            Value::Bool(true) => true,
            Value::Object(map) => {
                map.is_empty()
                    || (map.len() == 1 && map.get("type") == Some(&Value::String("object".into())))
            }
            _ => false,
        };
        let compile = |schema: &Value| {
            jsonschema::validator_for(schema)
                .map(Arc::new)
                .map_err(|err| format!("has an invalid input schema: {err}"))
        };
        let (validator, partial) = if trivial {
            (None, None)
        } else {
            let mut without_required = schema.clone();
            if let Value::Object(map) = &mut without_required {
                map.remove("required");
            }
            (Some(compile(&schema)?), Some(compile(&without_required)?))
        };
        let properties = schema
            .get("properties")
            .and_then(Value::as_object)
            .filter(|_| {
                // Names outside `properties` are allowed only when the schema says so.
                !matches!(
                    schema.get("additionalProperties"),
                    Some(Value::Bool(true) | Value::Object(_))
                )
            })
            .map(|properties| properties.keys().cloned().collect());
        let required = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|names| {
                names
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        Ok(InputSchema {
            schema,
            validator,
            partial,
            properties,
            required,
        })
    }

    /// Whether checking can be skipped because every object satisfies the schema.
    pub fn is_trivial(&self) -> bool {
        self.validator.is_none()
    }

    /// Declared input names, when only those are allowed.
    pub fn properties(&self) -> Option<&BTreeSet<String>> {
        self.properties.as_ref()
    }

    /// Names the schema requires.
    pub fn required(&self) -> &[String] {
        &self.required
    }

    /// Checks a complete input; errors are `(JSON pointer, message)`.
    pub fn check(&self, input: &Value) -> Result<(), Vec<(String, String)>> {
        Self::run(self.validator.as_deref(), input)
    }

    /// Checks the inputs known before execution, ignoring `required`.
    pub fn check_partial(&self, input: &Value) -> Result<(), Vec<(String, String)>> {
        Self::run(self.partial.as_deref(), input)
    }

    fn run(
        validator: Option<&jsonschema::Validator>,
        input: &Value,
    ) -> Result<(), Vec<(String, String)>> {
        let Some(validator) = validator else {
            return Ok(());
        };
        if validator.is_valid(input) {
            return Ok(());
        }
        Err(validator
            .iter_errors(input)
            .map(|err| (err.instance_path().as_str().to_string(), err.to_string()))
            .collect())
    }
}

/// What the engine knows of a component from its manifest.
#[derive(Debug, Clone)]
pub struct ComponentManifest {
    /// The component key (a flow's `name` for world `flow`).
    pub key: String,
    /// The declared version (`0.0.0` when a flow declares none).
    pub version: String,
    /// Whether the component is a connector or a code-native flow.
    pub world: World,
    /// Actions by key, with their input schemas.
    pub actions: BTreeMap<String, InputSchema>,
    /// Triggers by key, with their input schemas.
    pub triggers: BTreeMap<String, InputSchema>,
    /// The manifest document as the component returned it.
    pub document: Value,
}

impl ComponentManifest {
    /// Reads the manifest JSON a component of `world` returned.
    pub fn parse(text: &str, world: World) -> Result<ComponentManifest, String> {
        let document: Value =
            serde_json::from_str(text).map_err(|err| format!("is not JSON: {err}"))?;
        let field = |name: &str| document.get(name).and_then(Value::as_str);
        let (key, version) = match world {
            World::Component => (
                field("key").ok_or("has no string `key`")?,
                field("version").ok_or("has no string `version`")?,
            ),
            World::Flow => (
                field("name").ok_or("has no string `name`")?,
                field("version").unwrap_or("0.0.0"),
            ),
        };
        let schemas = |section: &str| -> Result<BTreeMap<String, InputSchema>, String> {
            let Some(entries) = document.get(section) else {
                return Ok(BTreeMap::new());
            };
            let entries = entries
                .as_object()
                .ok_or_else(|| format!("`{section}` is not an object"))?;
            entries
                .iter()
                .map(|(name, definition)| {
                    let schema = definition
                        .get("inputs")
                        .cloned()
                        .unwrap_or_else(|| serde_json::json!({"type": "object"}));
                    InputSchema::new(schema)
                        .map(|schema| (name.clone(), schema))
                        .map_err(|err| format!("`{section}.{name}` {err}"))
                })
                .collect()
        };
        Ok(ComponentManifest {
            key: key.to_string(),
            version: version.to_string(),
            world,
            actions: schemas("actions")?,
            triggers: schemas("triggers")?,
            document: document.clone(),
        })
    }
}

/// A component ready to run, with its manifest. Cloning is cheap.
#[derive(Clone)]
pub struct CatalogEntry {
    /// The compiled component, ready to instantiate.
    pub component: LoadedComponent,
    /// What its manifest declares.
    pub manifest: Arc<ComponentManifest>,
}

impl std::fmt::Debug for CatalogEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogEntry")
            .field("key", &self.manifest.key)
            .field("version", &self.manifest.version)
            .field("hash", &self.component.hash())
            .finish()
    }
}

impl CatalogEntry {
    /// `component` with the manifest it declares (its `manifest()` called in a sandbox).
    pub async fn read(runtime: &Runtime, component: LoadedComponent) -> Result<Self, CatalogError> {
        let manifest = read_manifest(runtime, &component).await?;
        Ok(CatalogEntry {
            component,
            manifest: Arc::new(manifest),
        })
    }
}

/// Resolves the components a definition pins. A host backs this with its registry;
/// lookups are synchronous, so a host resolves (and loads) what a definition needs
/// before validating it.
pub trait ComponentCatalog: Send + Sync {
    /// The component `key` at `version`.
    fn lookup(&self, key: &str, version: &str) -> Option<CatalogEntry>;

    /// The versions of `key` the catalog has, for error messages.
    fn versions(&self, key: &str) -> Vec<String>;

    /// The engine that runs code steps (`runtime/code-engine`), when this host has one;
    /// without it, a definition with a code step is refused.
    fn code_engine(&self) -> Option<CatalogEntry> {
        None
    }
}

/// A file of a directory that [`MemoryCatalog::load_dir`] could not use.
#[derive(Debug, Clone)]
pub struct SkippedFile {
    /// The file skipped.
    pub path: PathBuf,
    /// Why it could not be used.
    pub reason: String,
}

/// A catalog in memory.
#[derive(Default, Clone)]
pub struct MemoryCatalog {
    entries: BTreeMap<(String, String), CatalogEntry>,
    skipped: Vec<SkippedFile>,
    code_engine: Option<CatalogEntry>,
}

impl MemoryCatalog {
    /// An empty catalog.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes `component` (built from `runtime/code-engine`) the engine of code steps.
    pub async fn set_code_engine(
        &mut self,
        runtime: &Runtime,
        component: LoadedComponent,
    ) -> Result<CatalogEntry, CatalogError> {
        let entry = CatalogEntry::read(runtime, component).await?;
        self.code_engine = Some(entry.clone());
        Ok(entry)
    }

    /// Adds a loaded component: calls its `manifest()` in a sandbox and indexes it by
    /// key and version. The code-step engine (key `sluice-code`) also becomes the
    /// catalog's code engine, so a directory holding it runs code steps.
    pub async fn add(
        &mut self,
        runtime: &Runtime,
        component: LoadedComponent,
    ) -> Result<CatalogEntry, CatalogError> {
        let entry = CatalogEntry::read(runtime, component).await?;
        let slot = (entry.manifest.key.clone(), entry.manifest.version.clone());
        if let Some(existing) = self.entries.get(&slot) {
            if existing.component.hash() == entry.component.hash() {
                return Ok(existing.clone());
            }
            return Err(CatalogError::Duplicate {
                key: slot.0,
                version: slot.1,
                first: existing.component.hash().to_hex(),
                second: entry.component.hash().to_hex(),
            });
        }
        if entry.manifest.key == crate::flow::CODE_ENGINE_KEY {
            self.code_engine = Some(entry.clone());
        }
        self.entries.insert(slot, entry.clone());
        Ok(entry)
    }

    /// Loads (validates and compiles) `bytes` and adds the component.
    pub async fn add_bytes(
        &mut self,
        runtime: &Runtime,
        bytes: &[u8],
        what: &str,
    ) -> Result<CatalogEntry, CatalogError> {
        let component = runtime.load(bytes).map_err(|err| CatalogError::Load {
            what: what.to_string(),
            message: err.to_string(),
        })?;
        self.add(runtime, component).await
    }

    /// Loads every `*.wasm` file of `dir` (not recursively). Files that are not valid
    /// Sluice components are skipped and listed in [`MemoryCatalog::skipped`]; two
    /// different builds of one key and version are an error.
    pub async fn load_dir(runtime: &Runtime, dir: &Path) -> Result<MemoryCatalog, CatalogError> {
        let read_error = |source| CatalogError::Read {
            path: dir.to_path_buf(),
            source,
        };
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(read_error)?
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "wasm") && path.is_file())
            .collect();
        paths.sort();
        let mut catalog = MemoryCatalog::new();
        for path in paths {
            let bytes = std::fs::read(&path).map_err(|source| CatalogError::Read {
                path: path.clone(),
                source,
            })?;
            match catalog
                .add_bytes(runtime, &bytes, &path.display().to_string())
                .await
            {
                Ok(_) => {}
                Err(err @ CatalogError::Duplicate { .. }) => return Err(err),
                Err(err) => catalog.skipped.push(SkippedFile {
                    path,
                    reason: err.to_string(),
                }),
            }
        }
        Ok(catalog)
    }

    /// Files [`MemoryCatalog::load_dir`] skipped, with the reason.
    pub fn skipped(&self) -> &[SkippedFile] {
        &self.skipped
    }

    /// Every entry, by key and version.
    pub fn entries(&self) -> impl Iterator<Item = &CatalogEntry> {
        self.entries.values()
    }
}

impl ComponentCatalog for MemoryCatalog {
    fn lookup(&self, key: &str, version: &str) -> Option<CatalogEntry> {
        self.entries
            .get(&(key.to_string(), version.to_string()))
            .cloned()
    }

    fn versions(&self, key: &str) -> Vec<String> {
        self.entries
            .keys()
            .filter(|(k, _)| k == key)
            .map(|(_, version)| version.clone())
            .collect()
    }

    fn code_engine(&self) -> Option<CatalogEntry> {
        self.code_engine.clone()
    }
}

/// Calls `manifest()` on a component in a sandbox and parses the result.
pub async fn read_manifest(
    runtime: &Runtime,
    component: &LoadedComponent,
) -> Result<ComponentManifest, CatalogError> {
    let hash = component.hash();
    let failed = |message: String| CatalogError::Manifest {
        hash: hash.short(),
        message,
    };
    let report = runtime
        .execute(
            component,
            Call::Manifest,
            ExecutionContext {
                execution_id: format!("manifest-{}", hash.short()),
                attempt: 1,
                ..ExecutionContext::default()
            },
            &Capabilities::default(),
            &Limits::default(),
        )
        .await
        .map_err(|err| failed(format!("could not be read: {err}")))?;
    match report.outcome {
        Outcome::Completed {
            result: Returned::Manifest(text),
        } => ComponentManifest::parse(&text, component.world()).map_err(failed),
        other => Err(failed(format!(
            "could not be read: the call ended with {}",
            other.status()
        ))),
    }
}

/// The hash a pin names, parsed.
pub(crate) fn parse_hash(text: &str) -> Result<ContentHash, String> {
    let text = text.strip_prefix("sha256:").unwrap_or(text);
    text.parse::<ContentHash>().map_err(|err| err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn trivial_schemas_skip_checking() {
        assert!(
            InputSchema::new(json!({"type": "object"}))
                .unwrap()
                .is_trivial()
        );
        assert!(InputSchema::new(json!({})).unwrap().is_trivial());
        let schema = InputSchema::new(json!({
            "type": "object",
            "properties": {"scope": {"enum": ["flow"]}, "key": {"type": "string"}},
            "required": ["scope", "key"]
        }))
        .unwrap();
        assert!(!schema.is_trivial());
        assert_eq!(schema.required(), ["scope", "key"]);
        assert!(schema.properties().unwrap().contains("scope"));
        assert!(schema.check(&json!({"scope": "flow", "key": "k"})).is_ok());
        let errors = schema.check(&json!({"scope": "nope"})).unwrap_err();
        assert!(
            errors.iter().any(|(path, _)| path == "/scope"),
            "{errors:?}"
        );
        assert!(schema.check_partial(&json!({"key": "k"})).is_ok());
    }

    #[test]
    fn manifests_parse_for_both_worlds() {
        let manifest = ComponentManifest::parse(
            r#"{"key": "hello", "version": "0.1.0", "actions": {"echo": {"inputs": {"type": "object"}}}}"#,
            World::Component,
        )
        .unwrap();
        assert_eq!(
            (manifest.key.as_str(), manifest.version.as_str()),
            ("hello", "0.1.0")
        );
        assert!(manifest.actions.contains_key("echo"));
        let flow = ComponentManifest::parse(r#"{"name": "f"}"#, World::Flow).unwrap();
        assert_eq!(flow.version, "0.0.0");
        assert!(ComponentManifest::parse(r#"{"version": "1"}"#, World::Component).is_err());
        assert!(
            ComponentManifest::parse(
                r#"{"key": "k", "version": "1", "actions": {"a": {"inputs": {"type": 5}}}}"#,
                World::Component
            )
            .is_err()
        );
    }
}

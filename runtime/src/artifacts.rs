//! The artifact cache: components are validated and compiled once, stored
//! content-addressed (sha256 of the bytes, under a directory named by the engine's
//! compatibility hash), reloaded by memory-mapped deserialization, and kept in memory
//! as one pre-instantiated `InstancePre` per content hash. Concurrent loads of the
//! same bytes compile once: later callers wait for the first and share its result.
//! Compilation itself goes through the runtime's [`Compiler`] (see `compile`).

use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

use crate::World;
use crate::bindings::{component_world::ComponentPre, flow_world::FlowPre};
use crate::capabilities::HostContext;
use crate::compile::{self, CompileSlots, CompileStats, Compiler, EngineSettings};
use crate::error::{LoadError, RuntimeError};
use crate::validate;

/// The sha256 of a component's bytes: its identity in the cache and the registry.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentHash([u8; 32]);

impl ContentHash {
    /// Hashes `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        ContentHash(Sha256::digest(bytes).into())
    }

    /// The hash as 64 lower-case hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The first 12 hex digits, for logs.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..6])
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash({})", self.to_hex())
    }
}

/// A string that is not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid content hash `{0}`: expected 64 hex digits (a sha256)")]
pub struct ContentHashError(String);

impl FromStr for ContentHash {
    type Err = ContentHashError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| ContentHashError(text.to_string()))?;
        Ok(ContentHash(bytes))
    }
}

impl Serialize for ContentHash {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for ContentHash {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The typed pre-instantiation of a component, by world.
pub(crate) enum Pre {
    Component(ComponentPre<HostContext>),
    Flow(FlowPre<HostContext>),
}

/// A validated, compiled component, ready to execute. Cloning is cheap.
#[derive(Clone)]
pub struct LoadedComponent {
    inner: Arc<Loaded>,
}

struct Loaded {
    hash: ContentHash,
    world: World,
    imports: Vec<String>,
    source_len: u64,
    origin: LoadOrigin,
    compile_stats: Option<CompileStats>,
    pre: Pre,
}

/// How a component came to be in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "origin")]
pub enum LoadOrigin {
    /// Validated and compiled now.
    #[serde(rename_all = "camelCase")]
    Compiled {
        #[serde(with = "duration_us_field", rename = "compileTimeUs")]
        /// How long compiling took.
        compile_time: Duration,
    },
    /// Deserialized from the artifact cache on disk.
    #[serde(rename_all = "camelCase")]
    ArtifactCache {
        #[serde(with = "duration_us_field", rename = "loadTimeUs")]
        /// How long deserializing and pre-instantiating took.
        load_time: Duration,
    },
}

mod duration_us_field {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(
        duration: &Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(u64::try_from(duration.as_micros()).unwrap_or(u64::MAX))
    }
}

impl LoadedComponent {
    /// The sha256 of the component's bytes.
    pub fn hash(&self) -> ContentHash {
        self.inner.hash
    }

    /// The world the component implements.
    pub fn world(&self) -> World {
        self.inner.world
    }

    /// The component's imports, as written in the binary.
    pub fn imports(&self) -> &[String] {
        &self.inner.imports
    }

    /// Size of the component's bytes.
    pub fn source_len(&self) -> u64 {
        self.inner.source_len
    }

    /// Whether it was compiled now or loaded from the artifact cache, and how long that took.
    pub fn origin(&self) -> LoadOrigin {
        self.inner.origin
    }

    /// What compiling it cost, when this runtime compiled it or its artifact index
    /// recorded it (every artifact this version of the cache wrote).
    pub fn compile_stats(&self) -> Option<CompileStats> {
        self.inner.compile_stats
    }

    pub(crate) fn pre(&self) -> &Pre {
        &self.inner.pre
    }
}

impl fmt::Debug for LoadedComponent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedComponent")
            .field("hash", &self.inner.hash)
            .field("world", &self.inner.world)
            .field("source_len", &self.inner.source_len)
            .field("origin", &self.inner.origin)
            .finish()
    }
}

/// Bumped whenever `IndexEntry` changes shape (2: compile time and peak memory).
const INDEX_FORMAT: u32 = 2;

/// What the cache records next to each artifact (bincode): enough to load the artifact
/// without the component's bytes, and proof that the artifact was completely written.
#[derive(Debug, bincode::Encode, bincode::Decode)]
struct IndexEntry {
    format: u32,
    world: World,
    imports: Vec<String>,
    source_len: u64,
    artifact_len: u64,
    compiled_at_ms: u64,
    compile_time_us: u64,
    compile_peak_memory_bytes: Option<u64>,
}

/// How the cache compiles on a miss: the runtime's compiler, its gate on compiles at
/// once, and what a worker needs to build a compatible engine.
pub(crate) struct CompileContext<'a> {
    pub(crate) compiler: &'a Compiler,
    pub(crate) slots: &'a CompileSlots,
    pub(crate) max_wasm_stack: usize,
    pub(crate) opt_level: crate::engine::OptLevel,
}

/// Compiled components, in memory and (optionally) on disk.
pub(crate) struct ArtifactCache {
    /// `<cache_dir>/<compatibility hash>`, when persistent.
    dir: Option<PathBuf>,
    loaded: RwLock<HashMap<ContentHash, LoadedComponent>>,
    /// The engine's compatibility directory name, also given to compile workers.
    compatibility: String,
    /// One lock per content hash being compiled, so that concurrent loads of the same
    /// bytes (uploads, or executions after a restart) compile once.
    flights: Mutex<HashMap<ContentHash, Arc<Mutex<()>>>>,
}

/// A `Hasher` that feeds sha256, so the engine's compatibility hash gives the same
/// directory name in every process (std's hashers promise no such stability).
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        0
    }
}

/// A directory name identifying artifacts this engine can load.
pub(crate) fn compatibility_dir(engine: &Engine) -> String {
    let mut hasher = Sha256Hasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let digest = hasher.0.finalize();
    format!("engine-{}", hex::encode(&digest[..8]))
}

impl ArtifactCache {
    pub(crate) fn new(engine: &Engine, cache_dir: Option<&Path>) -> Result<Self, RuntimeError> {
        let compatibility = compatibility_dir(engine);
        let dir = match cache_dir {
            None => None,
            Some(root) => {
                let dir = root.join(&compatibility);
                create_private_dir(&dir).map_err(|source| RuntimeError::CacheDir {
                    path: dir.clone(),
                    source,
                })?;
                Some(dir)
            }
        };
        Ok(ArtifactCache {
            dir,
            loaded: RwLock::new(HashMap::new()),
            compatibility,
            flights: Mutex::new(HashMap::new()),
        })
    }

    pub(crate) fn get(&self, hash: &ContentHash) -> Option<LoadedComponent> {
        self.loaded
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(hash)
            .cloned()
    }

    pub(crate) fn remove(&self, hash: &ContentHash) -> bool {
        self.loaded
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(hash)
            .is_some()
    }

    fn insert(&self, component: LoadedComponent) -> LoadedComponent {
        let mut loaded = self.loaded.write().unwrap_or_else(PoisonError::into_inner);
        // Two concurrent loads of the same bytes: the first one in wins, so every
        // caller shares one `InstancePre`.
        loaded.entry(component.hash()).or_insert(component).clone()
    }

    fn paths(&self, hash: &ContentHash) -> Option<(PathBuf, PathBuf)> {
        let dir = self.dir.as_ref()?;
        let hex = hash.to_hex();
        Some((
            dir.join(format!("{hex}.cwasm")),
            dir.join(format!("{hex}.idx")),
        ))
    }

    /// Validates, compiles (or reloads) and pre-instantiates `bytes`.
    pub(crate) fn load(
        &self,
        engine: &Engine,
        linker: &Linker<HostContext>,
        compiler: &CompileContext<'_>,
        bytes: &[u8],
    ) -> Result<LoadedComponent, LoadError> {
        let hash = ContentHash::of(bytes);
        if let Some(found) = self.get(&hash) {
            return Ok(found);
        }
        let inspection = validate::inspect(bytes)?;
        if let Ok(found) = self.load_from_disk(engine, linker, &hash) {
            return Ok(found);
        }

        let flight = Arc::clone(
            self.flights
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(hash)
                .or_default(),
        );
        let result = {
            let _compiling = flight.lock().unwrap_or_else(PoisonError::into_inner);
            // Whoever held the lock before may have compiled these very bytes.
            match self.get(&hash) {
                Some(found) => Ok(found),
                None => match self.load_from_disk(engine, linker, &hash) {
                    Ok(found) => Ok(found),
                    Err(_) => self.compile(engine, linker, compiler, bytes, hash, inspection),
                },
            }
        };
        let mut flights = self.flights.lock().unwrap_or_else(PoisonError::into_inner);
        // The map's reference and ours: nobody else waits on this hash.
        if Arc::strong_count(&flight) == 2 {
            flights.remove(&hash);
        }
        result
    }

    fn compile(
        &self,
        engine: &Engine,
        linker: &Linker<HostContext>,
        compiler: &CompileContext<'_>,
        bytes: &[u8],
        hash: ContentHash,
        inspection: validate::Inspection,
    ) -> Result<LoadedComponent, LoadError> {
        let _slot = compiler.slots.acquire();
        let started = Instant::now();
        let (component, stats) = match (compiler.compiler, self.paths(&hash)) {
            (Compiler::InProcess, None) => {
                let component = Component::new(engine, bytes)
                    .map_err(|err| LoadError::Compile(format!("{err:#}")))?;
                let stats = CompileStats {
                    compile_time: started.elapsed(),
                    peak_memory_bytes: None,
                };
                (component, stats)
            }
            (Compiler::InProcess, Some((artifact_path, index_path))) => {
                let artifact = engine
                    .precompile_component(bytes)
                    .map_err(|err| LoadError::Compile(format!("{err:#}")))?;
                let stats = CompileStats {
                    compile_time: started.elapsed(),
                    peak_memory_bytes: None,
                };
                // Type-check before anything is written, so the cache never holds a
                // component that cannot run.
                // SAFETY: `artifact` was produced just above by `precompile_component`
                // of this very engine; it is trusted compiler output, never guest bytes.
                let checked = unsafe { Component::deserialize(engine, &artifact) }
                    .map_err(|err| LoadError::Compile(format!("{err:#}")))?;
                pre_instantiate(linker, &checked, inspection.world)?;
                drop(checked);
                write_atomically(&artifact_path, &artifact)?;
                self.write_index(&index_path, &inspection, bytes, artifact.len(), stats)?;
                // SAFETY: see `deserialize_artifact`: the file was just written by us,
                // atomically, from `precompile_component` output of this engine.
                let component = unsafe { deserialize_artifact(engine, &artifact_path) }?;
                (component, stats)
            }
            (Compiler::Worker(command), paths) => {
                // The worker writes into a private temporary file of the cache
                // directory (renamed into place once checked), or of the system's
                // temporary directory when there is no cache (then unlinked once
                // mapped: the mapping keeps the pages).
                let dir = match &self.dir {
                    Some(dir) => dir.clone(),
                    None => std::env::temp_dir(),
                };
                let output = tempfile::Builder::new()
                    .prefix(".compiling-")
                    .suffix(".cwasm")
                    .tempfile_in(&dir)
                    .map_err(|err| {
                        LoadError::Cache(format!(
                            "cannot create a file for the artifact in {}: {err}",
                            dir.display()
                        ))
                    })?;
                let settings = EngineSettings {
                    max_wasm_stack: compiler.max_wasm_stack,
                    opt_level: compiler.opt_level,
                    compatibility: self.compatibility.clone(),
                };
                let stats = compile::compile_in_worker(command, &settings, bytes, output.path())?;
                // SAFETY: the file is private to this process's user (created 0600 by
                // `tempfile` in a 0700 directory) and was written by the compile
                // worker, our own binary running `precompile_component` of an engine
                // with this engine's compatibility hash (it checks, and wasmtime
                // checks the artifact's header again), which exited 0 after
                // reporting the artifact's exact length: it is compiler output, not
                // guest bytes. See `docs/unsafe.md`.
                let component = unsafe { deserialize_artifact(engine, output.path()) }?;
                pre_instantiate(linker, &component, inspection.world)?;
                if let Some((artifact_path, index_path)) = paths {
                    let artifact_len = std::fs::metadata(output.path())
                        .map(|meta| meta.len())
                        .unwrap_or(0);
                    output.persist(&artifact_path).map_err(|err| {
                        LoadError::Cache(format!(
                            "cannot write {}: {}",
                            artifact_path.display(),
                            err.error
                        ))
                    })?;
                    self.write_index(
                        &index_path,
                        &inspection,
                        bytes,
                        usize::try_from(artifact_len).unwrap_or(usize::MAX),
                        stats,
                    )?;
                }
                (component, stats)
            }
        };
        let pre = pre_instantiate(linker, &component, inspection.world)?;
        let loaded = LoadedComponent {
            inner: Arc::new(Loaded {
                hash,
                world: inspection.world,
                imports: inspection.imports,
                source_len: bytes.len() as u64,
                origin: LoadOrigin::Compiled {
                    compile_time: started.elapsed(),
                },
                compile_stats: Some(stats),
                pre,
            }),
        };
        tracing::debug!(
            component = %hash.short(),
            world = %loaded.world(),
            compile_us = u64::try_from(stats.compile_time.as_micros()).unwrap_or(u64::MAX),
            peak_memory = stats.peak_memory_bytes,
            "component compiled"
        );
        Ok(self.insert(loaded))
    }

    /// Records an artifact just written; written last, so an index entry proves its
    /// artifact is complete.
    fn write_index(
        &self,
        index_path: &Path,
        inspection: &validate::Inspection,
        bytes: &[u8],
        artifact_len: usize,
        stats: CompileStats,
    ) -> Result<(), LoadError> {
        let entry = IndexEntry {
            format: INDEX_FORMAT,
            world: inspection.world,
            imports: inspection.imports.clone(),
            source_len: bytes.len() as u64,
            artifact_len: artifact_len as u64,
            compiled_at_ms: crate::capabilities::log::now_ms(),
            compile_time_us: u64::try_from(stats.compile_time.as_micros()).unwrap_or(u64::MAX),
            compile_peak_memory_bytes: stats.peak_memory_bytes,
        };
        let encoded = bincode::encode_to_vec(&entry, bincode::config::standard())
            .map_err(|err| LoadError::Cache(format!("cannot encode the index entry: {err}")))?;
        write_atomically(index_path, &encoded)
    }

    /// Loads a component compiled earlier, by hash, without its bytes.
    pub(crate) fn load_cached(
        &self,
        engine: &Engine,
        linker: &Linker<HostContext>,
        hash: &ContentHash,
    ) -> Result<LoadedComponent, LoadError> {
        if let Some(found) = self.get(hash) {
            return Ok(found);
        }
        self.load_from_disk(engine, linker, hash)
    }

    fn load_from_disk(
        &self,
        engine: &Engine,
        linker: &Linker<HostContext>,
        hash: &ContentHash,
    ) -> Result<LoadedComponent, LoadError> {
        let Some((artifact_path, index_path)) = self.paths(hash) else {
            return Err(LoadError::NotCached(*hash));
        };
        let started = Instant::now();
        let Ok(index) = std::fs::read(&index_path) else {
            return Err(LoadError::NotCached(*hash));
        };
        let entry = match bincode::decode_from_slice::<IndexEntry, _>(
            &index,
            bincode::config::standard(),
        ) {
            Ok((entry, _)) if entry.format == INDEX_FORMAT => entry,
            _ => {
                tracing::warn!(component = %hash.short(), "unreadable artifact index entry; recompiling");
                return Err(LoadError::NotCached(*hash));
            }
        };
        // SAFETY: an index entry exists only for artifacts this cache wrote completely
        // (see `deserialize_artifact`).
        let component = match unsafe { deserialize_artifact(engine, &artifact_path) } {
            Ok(component) => component,
            Err(err) => {
                tracing::warn!(component = %hash.short(), error = %err, "unusable artifact; recompiling");
                let _ = std::fs::remove_file(&index_path);
                return Err(LoadError::NotCached(*hash));
            }
        };
        let pre = pre_instantiate(linker, &component, entry.world)?;
        let loaded = LoadedComponent {
            inner: Arc::new(Loaded {
                hash: *hash,
                world: entry.world,
                imports: entry.imports,
                source_len: entry.source_len,
                origin: LoadOrigin::ArtifactCache {
                    load_time: started.elapsed(),
                },
                compile_stats: Some(CompileStats {
                    compile_time: Duration::from_micros(entry.compile_time_us),
                    peak_memory_bytes: entry.compile_peak_memory_bytes,
                }),
                pre,
            }),
        };
        Ok(self.insert(loaded))
    }
}

/// Memory-maps a precompiled artifact.
///
/// # Safety
///
/// `path` must hold output of `Engine::precompile_component` from an engine with the
/// same compatibility hash. This holds for files of the cache directory: its name is
/// that hash, it is created private (0700) to the operator, and the cache writes
/// artifacts to a temporary file and renames them into place, so a reader never sees
/// a partial file. Deserializing arbitrary bytes would let them run as native code.
unsafe fn deserialize_artifact(engine: &Engine, path: &Path) -> Result<Component, LoadError> {
    // SAFETY: guaranteed by the caller, per this function's contract.
    unsafe { Component::deserialize_file(engine, path) }.map_err(|err| {
        LoadError::Cache(format!("cannot load artifact {}: {err:#}", path.display()))
    })
}

/// Type-checks the component's imports against the linker and its exports against
/// the world, producing the typed pre-instantiation.
fn pre_instantiate(
    linker: &Linker<HostContext>,
    component: &Component,
    world: World,
) -> Result<Pre, LoadError> {
    let mismatch = |err: wasmtime::Error| LoadError::WorldMismatch {
        world,
        message: format!("{err:#}"),
    };
    let instance_pre = linker.instantiate_pre(component).map_err(mismatch)?;
    Ok(match world {
        World::Component => Pre::Component(ComponentPre::new(instance_pre).map_err(mismatch)?),
        World::Flow => Pre::Flow(FlowPre::new(instance_pre).map_err(mismatch)?),
    })
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), LoadError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let fail =
        |err: std::io::Error| LoadError::Cache(format!("cannot write {}: {err}", path.display()));
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(fail)?;
    file.write_all(bytes).map_err(fail)?;
    file.as_file().sync_all().map_err(fail)?;
    file.persist(path).map_err(|err| fail(err.error))?;
    Ok(())
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_hash_round_trips_through_hex() {
        let hash = ContentHash::of(b"component bytes");
        assert_eq!(hash.to_hex().parse::<ContentHash>().unwrap(), hash);
        assert_eq!(hash.short().len(), 12);
        assert!("xyz".parse::<ContentHash>().is_err());
    }
}

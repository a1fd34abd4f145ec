//! The integration-wide parts of a definition: the pinned components (checked
//! against the catalog, hash included) and the config variables, which every flow's
//! steps then look up.

use super::{Compiler, key_path};
use crate::World;
use crate::flow::catalog::{CatalogEntry, parse_hash};
use crate::flow::definition::{ConfigVar, ConfigVarType, Definition};
use crate::flow::keys::{check_component_key, check_config_key};
use crate::flow::plan::ConfigVarPlan;
use crate::flow::schedule::CronSchedule;

impl Compiler<'_> {
    pub(super) fn components(&mut self, definition: &Definition) {
        for (key, pin) in &definition.components {
            let path = key_path("components", key);
            if let Err(message) = check_component_key(key) {
                self.error(path, message);
                self.components.insert(key.clone(), None);
                continue;
            }
            let Some(catalog) = self.catalog else {
                if let Some(hash) = &pin.hash
                    && let Err(message) = parse_hash(hash)
                {
                    self.error(format!("{path}.hash"), message);
                }
                self.components.insert(key.clone(), None);
                continue;
            };
            let entry = catalog.lookup(key, &pin.version);
            match &entry {
                None => {
                    let versions = catalog.versions(key);
                    let known = if versions.is_empty() {
                        "the catalog has no component with this key".to_string()
                    } else {
                        format!("the catalog has versions {}", versions.join(", "))
                    };
                    self.error(
                        format!("{path}.version"),
                        format!(
                            "unknown component `{key}` version `{}`: {known}",
                            pin.version
                        ),
                    );
                }
                Some(entry) => {
                    if let Some(hash) = &pin.hash {
                        match parse_hash(hash) {
                            Err(message) => self.error(format!("{path}.hash"), message),
                            Ok(hash) if hash != entry.component.hash() => self.error(
                                format!("{path}.hash"),
                                format!(
                                    "component `{key}` version `{}` has hash {}, not the pinned \
                                     {hash}",
                                    pin.version,
                                    entry.component.hash()
                                ),
                            ),
                            Ok(_) => {}
                        }
                    }
                }
            }
            self.components.insert(key.clone(), entry);
        }
    }

    pub(super) fn config_vars(&mut self, definition: &Definition) -> Vec<ConfigVarPlan> {
        let mut plans = Vec::new();
        for (index, var) in definition.config_vars.iter().enumerate() {
            let path = format!("configVars[{index}]");
            if let Err(message) = check_config_key(&var.key) {
                self.error(format!("{path}.key"), message);
                continue;
            }
            if self.config.contains_key(&var.key) {
                self.error(
                    format!("{path}.key"),
                    format!("duplicate config variable `{}`", var.key),
                );
                continue;
            }
            if let Some(default) = &var.default_value {
                let fits = match var.data_type {
                    ConfigVarType::String => default.is_string(),
                    ConfigVarType::Number => default.is_number(),
                    ConfigVarType::Boolean => default.is_boolean(),
                    _ => true,
                };
                if !fits {
                    self.error(
                        format!("{path}.defaultValue"),
                        format!(
                            "the default value {default} does not have the variable's data type"
                        ),
                    );
                }
            }
            if var.data_type == ConfigVarType::Schedule
                && let Some(default) = &var.default_value
                && let Err(err) = CronSchedule::from_value(default)
            {
                self.error(format!("{path}.defaultValue"), err.to_string());
            }
            self.config_var_sources(&path, var);
            self.config_types.insert(var.key.clone(), var.data_type);
            self.config.insert(var.key.clone(), plans.len());
            plans.push(ConfigVarPlan {
                key: var.key.clone(),
                default: var.default_value.clone(),
            });
        }
        plans
    }

    /// A variable's connection type, data source and picklist: each only on the data
    /// type it belongs to, and each naming what a pinned component declares.
    fn config_var_sources(&mut self, path: &str, var: &ConfigVar) {
        match (&var.connection, var.data_type) {
            (None, ConfigVarType::Connection) => self.error(
                format!("{path}.connection"),
                "a `connection` variable names its connection type: `connection: {component, key}`",
            ),
            (Some(_), data_type) if data_type != ConfigVarType::Connection => self.error(
                format!("{path}.connection"),
                "only a variable of data type `connection` names a connection type",
            ),
            (Some(reference), _) => {
                self.declared(path, "connection", &reference.component, &reference.key)
            }
            (None, _) => {}
        }
        if let Some(reference) = &var.data_source {
            if var.data_type == ConfigVarType::Connection {
                self.error(
                    format!("{path}.dataSource"),
                    "a `connection` variable has no data source",
                );
            } else {
                self.declared(path, "dataSource", &reference.component, &reference.key);
            }
        }
        if let Some(values) = &var.picklist {
            if var.data_type != ConfigVarType::Picklist {
                self.error(
                    format!("{path}.picklist"),
                    "only a variable of data type `picklist` has a list of values",
                );
            } else if values.is_empty() {
                self.error(format!("{path}.picklist"), "the list of values is empty");
            } else if let Some(default) = &var.default_value
                && !values.iter().any(|value| default.as_str() == Some(value))
            {
                self.error(
                    format!("{path}.defaultValue"),
                    format!("the default value {default} is not one of the picklist's values"),
                );
            }
        }
    }

    /// Checks that pinned component `component` declares `key` among its connection
    /// types (`what` = `connection`) or data sources (`what` = `dataSource`).
    fn declared(&mut self, path: &str, what: &str, component: &str, key: &str) {
        let field = format!("{path}.{what}.component");
        let Ok(Some(entry)) = self.component(&field, component, World::Component) else {
            return;
        };
        let document = &entry.manifest.document;
        let (found, known): (bool, Vec<String>) = if what == "connection" {
            let types = document
                .get("connections")
                .and_then(|types| types.as_array())
                .map(|types| {
                    types
                        .iter()
                        .filter_map(|entry| entry.get("key")?.as_str().map(str::to_string))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            (types.iter().any(|declared| declared == key), types)
        } else {
            let sources = document
                .get("dataSources")
                .and_then(|sources| sources.as_object())
                .map(|sources| sources.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default();
            (sources.iter().any(|declared| declared == key), sources)
        };
        if !found {
            let noun = if what == "connection" {
                "connection type"
            } else {
                "data source"
            };
            self.error(
                format!("{path}.{what}.key"),
                format!(
                    "component `{component}` declares no {noun} `{key}` (it declares: {})",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            );
        }
    }

    /// The pinned component `key`, checked to be of `world`; `Err` after reporting.
    pub(super) fn component(
        &mut self,
        path: &str,
        key: &str,
        world: World,
    ) -> Result<Option<CatalogEntry>, ()> {
        match self.components.get(key) {
            None => {
                let pinned: Vec<&String> = self.components.keys().collect();
                self.error(
                    path,
                    format!(
                        "unknown component `{key}`: it is not pinned in `components` (pinned: {})",
                        if pinned.is_empty() {
                            "none".to_string()
                        } else {
                            pinned
                                .iter()
                                .map(|k| k.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        }
                    ),
                );
                Err(())
            }
            Some(None) => Ok(None),
            Some(Some(entry)) if entry.component.world() != world => {
                let message = match world {
                    World::Component => format!(
                        "`{key}` is a code-native flow (world `flow`), not a component with actions"
                    ),
                    World::Flow => format!(
                        "`{key}` is a component (world `component`), not a code-native flow"
                    ),
                };
                self.error(path, message);
                Err(())
            }
            Some(Some(entry)) => Ok(Some(entry.clone())),
        }
    }
}

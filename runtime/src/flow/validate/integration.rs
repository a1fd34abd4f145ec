//! The integration-wide parts of a definition: the pinned components (checked
//! against the catalog, hash included) and the config variables, which every flow's
//! steps then look up.

use super::{Compiler, key_path};
use crate::World;
use crate::flow::catalog::{CatalogEntry, parse_hash};
use crate::flow::definition::{ConfigVarType, Definition};
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
            self.config_types.insert(var.key.clone(), var.data_type);
            self.config.insert(var.key.clone(), plans.len());
            plans.push(ConfigVarPlan {
                key: var.key.clone(),
                default: var.default_value.clone(),
            });
        }
        plans
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

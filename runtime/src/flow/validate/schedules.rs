//! A flow's `schedule`: a cron expression in an IANA time zone, or a config
//! variable of data type `schedule` that carries both.

use super::Compiler;
use crate::flow::definition::{ConfigVarType, Flow};
use crate::flow::schedule::{CronSchedule, ScheduleSource, parse_timezone};

impl Compiler<'_> {
    /// Checks a flow's `schedule`: `Some(None)` when it has none, `None` after
    /// reporting errors.
    pub(super) fn schedule(&mut self, path: &str, flow: &Flow) -> Option<Option<ScheduleSource>> {
        let Some(schedule) = &flow.schedule else {
            return Some(None);
        };
        let path = format!("{path}.schedule");
        if flow.on.is_some() {
            self.error(
                &path,
                "a flow that runs `on` an instance event cannot also run on a schedule",
            );
            return None;
        }
        match (&schedule.cron, &schedule.config_var) {
            (Some(cron), None) => {
                let timezone = match &schedule.timezone {
                    None => None,
                    Some(name) => match parse_timezone(name) {
                        Ok(_) => Some(name.as_str()),
                        Err(err) => {
                            self.error(format!("{path}.timezone"), err.to_string());
                            return None;
                        }
                    },
                };
                match CronSchedule::parse(cron, timezone) {
                    Ok(parsed) => Some(Some(ScheduleSource::Cron(Box::new(parsed)))),
                    Err(err) => {
                        self.error(format!("{path}.cron"), err.to_string());
                        None
                    }
                }
            }
            (None, Some(var)) => {
                let var_path = format!("{path}.configVar");
                if schedule.timezone.is_some() {
                    self.error(
                        format!("{path}.timezone"),
                        "`timezone` goes with `cron`: the value of the config variable \
                         carries its own time zone (`{cron, timezone}`)",
                    );
                }
                self.config_var(&var_path, var)?;
                match self.config_types.get(var) {
                    Some(ConfigVarType::Schedule) if schedule.timezone.is_none() => {
                        Some(Some(ScheduleSource::ConfigVar(var.clone())))
                    }
                    Some(ConfigVarType::Schedule) => None,
                    other => {
                        let found = other
                            .and_then(|kind| serde_json::to_value(kind).ok())
                            .and_then(|kind| kind.as_str().map(str::to_string))
                            .unwrap_or_default();
                        self.error(
                            var_path,
                            format!(
                                "config variable `{var}` has data type `{found}`; a schedule \
                                 reads one of data type `schedule`"
                            ),
                        );
                        None
                    }
                }
            }
            (Some(_), Some(_)) | (None, None) => {
                self.error(
                    path,
                    "a schedule is either `cron` (with an optional `timezone`) or `configVar`",
                );
                None
            }
        }
    }
}

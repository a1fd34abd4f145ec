//! Flow schedules: a cron expression (5 fields, or 6 with seconds first) read in an
//! IANA time zone, and the instants it fires at. The validator and the host's scheduler
//! share this module, so a definition that validates is one the scheduler can run.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use serde_json::Value;

use super::plan::Plan;

/// The time zone of a schedule that names none.
pub const DEFAULT_TIMEZONE: &str = "UTC";

/// Why a schedule cannot be used. The messages say what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error(
        "malformed cron expression `{expression}`: {reason} (write 5 fields `minute hour \
         day-of-month month day-of-week`, or 6 with seconds first)"
    )]
    /// The cron expression does not parse.
    Cron {
        /// The expression as written.
        expression: String,
        /// What the cron parser objected to.
        reason: String,
    },
    #[error("the cron expression `{expression}` never fires: no date matches it")]
    /// The cron expression parses, but no date matches it.
    NeverFires {
        /// The expression as written.
        expression: String,
    },
    #[error("unknown time zone `{name}`: use an IANA name such as `Europe/Paris` or `UTC`")]
    /// The time zone is not an IANA time zone name.
    TimeZone {
        /// The name as written.
        name: String,
    },
    #[error(
        "a schedule is a cron string or an object `{{\"cron\": ..., \"timezone\": ...}}`, got \
         {value}"
    )]
    /// The schedule is neither a cron string nor a `{cron, timezone}` object.
    Value {
        /// The value given, as JSON.
        value: String,
    },
}

/// A parsed cron expression in its time zone.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    expression: String,
    timezone: Tz,
    cron: Cron,
}

impl PartialEq for CronSchedule {
    fn eq(&self, other: &Self) -> bool {
        self.expression == other.expression && self.timezone == other.timezone
    }
}

/// Where a flow's schedule comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum ScheduleSource {
    /// Written in the definition: the same for every instance.
    Cron(Box<CronSchedule>),
    /// The value of this config variable (data type `schedule`), set per instance.
    ConfigVar(String),
}

/// Seconds are optional (so tests and fine-grained jobs can fire every second); a
/// seventh (year) field is not cron as users know it, so it is refused.
fn parser() -> CronParser {
    CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .build()
}

/// Parses a cron expression and checks that it fires at all (`0 0 30 2 *` does not).
pub fn parse_cron(expression: &str) -> Result<Cron, ScheduleError> {
    let cron = parser()
        .parse(expression)
        .map_err(|err| ScheduleError::Cron {
            expression: expression.to_string(),
            reason: err.to_string(),
        })?;
    // Without a year field a pattern that fires at all fires within a few years of
    // any instant (Feb 29 every 4), so one search from a fixed instant settles it.
    let origin = Utc.timestamp_opt(946_684_800, 0).single();
    let fires = origin.is_some_and(|origin| cron.find_next_occurrence(&origin, true).is_ok());
    if !fires {
        return Err(ScheduleError::NeverFires {
            expression: expression.to_string(),
        });
    }
    Ok(cron)
}

/// Parses an IANA time zone name (`Europe/Paris`, `UTC`).
pub fn parse_timezone(name: &str) -> Result<Tz, ScheduleError> {
    Tz::from_str(name).map_err(|_| ScheduleError::TimeZone {
        name: name.to_string(),
    })
}

impl CronSchedule {
    /// A schedule from a cron expression and a time zone (UTC when `None`).
    pub fn parse(expression: &str, timezone: Option<&str>) -> Result<Self, ScheduleError> {
        let timezone = parse_timezone(timezone.unwrap_or(DEFAULT_TIMEZONE))?;
        let cron = parse_cron(expression)?;
        Ok(CronSchedule {
            expression: expression.to_string(),
            timezone,
            cron,
        })
    }

    /// A schedule from the value of a `schedule` config variable: a cron string, or
    /// `{"cron": ..., "timezone": ...}`. `null` and `""` mean "not scheduled".
    pub fn from_value(value: &Value) -> Result<Option<Self>, ScheduleError> {
        let shape_error = || ScheduleError::Value {
            value: value.to_string(),
        };
        match value {
            Value::Null => Ok(None),
            Value::String(text) if text.trim().is_empty() => Ok(None),
            Value::String(text) => CronSchedule::parse(text, None).map(Some),
            Value::Object(object) => {
                if object.keys().any(|key| key != "cron" && key != "timezone") {
                    return Err(shape_error());
                }
                let cron = match object.get("cron") {
                    Some(Value::String(cron)) => cron,
                    _ => return Err(shape_error()),
                };
                let timezone = match object.get("timezone") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(timezone)) => Some(timezone.as_str()),
                    Some(_) => return Err(shape_error()),
                };
                CronSchedule::parse(cron, timezone).map(Some)
            }
            _ => Err(shape_error()),
        }
    }

    /// The cron expression as written.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The IANA name of the time zone.
    pub fn timezone(&self) -> &str {
        self.timezone.name()
    }

    /// The first fire time strictly after `after_ms` (milliseconds since the Unix
    /// epoch); `None` when there is none (past year 5000).
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        // Fire times are whole seconds; starting from the second holding `after_ms`
        // and excluding it gives the first one strictly later.
        let second = after_ms.div_euclid(1000);
        let start = self.timezone.timestamp_opt(second, 0).single()?;
        self.cron
            .find_next_occurrence(&start, false)
            .ok()
            .map(|next| next.timestamp_millis())
    }

    /// The fire times in `(after_ms, until_ms]`: how many (counting at most `limit`)
    /// and the last one counted.
    pub fn fires_between(&self, after_ms: i64, until_ms: i64, limit: u64) -> (u64, Option<i64>) {
        let mut count = 0;
        let mut last = None;
        let mut cursor = after_ms;
        while count < limit {
            match self.next_after(cursor) {
                Some(next) if next <= until_ms => {
                    count += 1;
                    last = Some(next);
                    cursor = next;
                }
                _ => break,
            }
        }
        (count, last)
    }

    /// An instant as RFC 3339 in the schedule's time zone (`Z` for UTC).
    pub fn rfc3339(&self, at_ms: i64) -> String {
        DateTime::<Utc>::from_timestamp_millis(at_ms)
            .map(|at| {
                at.with_timezone(&self.timezone)
                    .to_rfc3339_opts(SecondsFormat::Secs, true)
            })
            .unwrap_or_default()
    }
}

impl Plan {
    /// Keys of the flows that have a schedule, in definition order.
    pub fn scheduled_flow_keys(&self) -> Vec<&str> {
        self.inner
            .flows
            .iter()
            .filter(|flow| flow.schedule.is_some())
            .map(|flow| &*flow.key)
            .collect()
    }

    /// Where flow `key`'s schedule comes from (`None`: it has none).
    pub fn flow_schedule(&self, key: &str) -> Option<&ScheduleSource> {
        self.inner.flow(key).and_then(|flow| flow.schedule.as_ref())
    }

    /// The schedule of flow `key` for an instance with `config`: the definition's
    /// cron, or the instance's value of the config variable (else its default).
    /// `Ok(None)` when the flow has no schedule or the value is empty.
    pub fn resolve_schedule(
        &self,
        key: &str,
        config: &BTreeMap<String, Value>,
    ) -> Result<Option<CronSchedule>, ScheduleError> {
        match self.flow_schedule(key) {
            None => Ok(None),
            Some(ScheduleSource::Cron(schedule)) => Ok(Some(CronSchedule::clone(schedule))),
            Some(ScheduleSource::ConfigVar(var)) => {
                let value = config.get(var).cloned().or_else(|| {
                    self.inner
                        .config_vars
                        .iter()
                        .find(|declared| &declared.key == var)
                        .and_then(|declared| declared.default.clone())
                });
                match value {
                    None => Ok(None),
                    Some(value) => CronSchedule::from_value(&value),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::flow::Definition;

    /// 2024-03-30T12:00:00Z, a Saturday, the day before Paris moves to summer time.
    const NOON: i64 = 1_711_800_000_000;

    #[test]
    fn five_and_six_fields_fire_where_expected() {
        let every_five = CronSchedule::parse("*/5 * * * *", None).unwrap();
        assert_eq!(every_five.timezone(), "UTC");
        assert_eq!(every_five.next_after(NOON), Some(NOON + 5 * 60_000));
        assert_eq!(every_five.next_after(NOON - 1), Some(NOON));
        let every_second = CronSchedule::parse("* * * * * *", None).unwrap();
        assert_eq!(every_second.next_after(NOON + 400), Some(NOON + 1000));
        assert_eq!(
            every_second.fires_between(NOON, NOON + 3500, 100),
            (3, Some(NOON + 3000))
        );
        assert_eq!(
            every_second.fires_between(NOON, NOON + 3500, 2),
            (2, Some(NOON + 2000))
        );
        assert_eq!(every_five.fires_between(NOON, NOON + 1000, 100), (0, None));
        assert_eq!(every_second.rfc3339(NOON + 1000), "2024-03-30T12:00:01Z");
    }

    #[test]
    fn time_zones_move_fire_times() {
        let paris = CronSchedule::parse("0 9 * * *", Some("Europe/Paris")).unwrap();
        // 09:00 in Paris on Sunday 31 March is 07:00 UTC (summer time began at 02:00).
        let next = paris.next_after(NOON + 3_600_000).unwrap();
        assert_eq!(paris.rfc3339(next), "2024-03-31T09:00:00+02:00");
        assert_eq!(next, NOON + 19 * 3_600_000);
    }

    #[test]
    fn bad_schedules_say_what_is_wrong() {
        for bad in ["* * * *", "61 * * * *", "* * * * * * 2030", "often"] {
            let err = CronSchedule::parse(bad, None).unwrap_err();
            assert!(matches!(err, ScheduleError::Cron { .. }), "{bad}: {err}");
            assert!(err.to_string().contains("5 fields"), "{err}");
        }
        assert!(matches!(
            CronSchedule::parse("0 0 30 2 *", None),
            Err(ScheduleError::NeverFires { .. })
        ));
        assert!(CronSchedule::parse("0 0 29 2 *", None).is_ok());
        let err = CronSchedule::parse("* * * * *", Some("Europe/Pariss")).unwrap_err();
        assert_eq!(
            err,
            ScheduleError::TimeZone {
                name: "Europe/Pariss".into()
            }
        );
    }

    /// A definition with a `Sync schedule` config variable (data type `schedule`), a
    /// `Region` string variable and the given flows (YAML, indented as list items).
    fn definition(flows: &str) -> String {
        format!(
            "definitionVersion: 1\nname: Scheduled\ncomponents:\n  hello: {{version: \"0.1.0\"}}\n\
             configVars:\n  - key: Sync schedule\n    dataType: schedule\n    defaultValue: \"0 * * * *\"\n\
             \x20 - key: Region\n    defaultValue: eu\nflows:\n{flows}"
        )
    }

    fn errors_of(text: &str) -> Vec<(String, String)> {
        let definition = match Definition::from_yaml(text) {
            Ok(definition) => definition,
            Err(err) => {
                return err
                    .errors
                    .into_iter()
                    .map(|error| (error.path, error.message))
                    .collect();
            }
        };
        match crate::flow::validate(&definition, None) {
            Ok(()) => Vec::new(),
            Err(err) => err
                .errors
                .into_iter()
                .map(|error| (error.path, error.message))
                .collect(),
        }
    }

    const STEPS: &str = "steps: [{key: a, action: hello.echo}]";

    #[test]
    fn flow_schedules_are_validated_with_their_path() {
        let webhook = format!("  - key: hook\n    {STEPS}\n");
        let cases = [
            (
                "cron: \"*/5 * * *\"",
                "flows[1].schedule.cron",
                "malformed cron expression `*/5 * * *`",
            ),
            (
                "cron: \"0 0 30 2 *\"",
                "flows[1].schedule.cron",
                "never fires",
            ),
            (
                "{cron: \"0 9 * * *\", timezone: Europe/Pariss}",
                "flows[1].schedule.timezone",
                "unknown time zone `Europe/Pariss`",
            ),
            (
                "{configVar: Sync schedul}",
                "flows[1].schedule.configVar",
                "unknown config variable `Sync schedul` (declared: Region, Sync schedule)",
            ),
            (
                "{configVar: Region}",
                "flows[1].schedule.configVar",
                "config variable `Region` has data type `string`",
            ),
            (
                "{configVar: Sync schedule, timezone: UTC}",
                "flows[1].schedule.timezone",
                "`timezone` goes with `cron`",
            ),
            (
                "{cron: \"* * * * *\", configVar: Sync schedule}",
                "flows[1].schedule",
                "either `cron`",
            ),
            ("{timezone: UTC}", "flows[1].schedule", "either `cron`"),
            (
                "{every: 5m}",
                "flows[1].schedule.every",
                "unknown field `every`",
            ),
        ];
        for (schedule, path, message) in cases {
            let schedule = if schedule.starts_with('{') {
                schedule.to_string()
            } else {
                format!("{{{schedule}}}")
            };
            let text = definition(&format!(
                "{webhook}  - key: sync\n    schedule: {schedule}\n    {STEPS}\n"
            ));
            let errors = errors_of(&text);
            assert!(
                errors
                    .iter()
                    .any(|(at, text)| at == path && text.contains(message)),
                "{schedule}: expected `{path}: {message}`, got {errors:?}"
            );
        }
    }

    #[test]
    fn flow_schedules_exclude_events_and_check_defaults() {
        let errors = errors_of(&definition(&format!(
            "  - key: setup\n    on: instanceDeploy\n    schedule: {{cron: \"* * * * *\"}}\n    {STEPS}\n"
        )));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].0, "flows[0].schedule");
        assert!(errors[0].1.contains("cannot also run on a schedule"));

        let text = definition(&format!(
            "  - key: sync\n    schedule: {{configVar: Sync schedule}}\n    {STEPS}\n"
        ))
        .replace("\"0 * * * *\"", "{cron: \"0 * * * *\", timezone: Atlantis}");
        let errors = errors_of(&text);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].0, "configVars[0].defaultValue");
        assert!(errors[0].1.contains("unknown time zone `Atlantis`"));
    }

    #[test]
    fn valid_flow_schedules_pass() {
        for schedule in [
            "{cron: \"*/5 * * * *\"}",
            "{cron: \"* * * * * *\", timezone: Europe/Paris}",
            "{cron: \"@daily\", timezone: America/New_York}",
            "{configVar: Sync schedule}",
        ] {
            let text = definition(&format!(
                "  - key: sync\n    schedule: {schedule}\n    singleton: true\n    {STEPS}\n"
            ));
            assert_eq!(errors_of(&text), Vec::new(), "{schedule}");
        }
    }

    #[test]
    fn config_values_are_a_cron_string_or_an_object() {
        let plain = CronSchedule::from_value(&json!("0 * * * *"))
            .unwrap()
            .unwrap();
        assert_eq!((plain.expression(), plain.timezone()), ("0 * * * *", "UTC"));
        let zoned =
            CronSchedule::from_value(&json!({"cron": "0 * * * *", "timezone": "Asia/Tokyo"}))
                .unwrap()
                .unwrap();
        assert_eq!(zoned.timezone(), "Asia/Tokyo");
        assert_eq!(CronSchedule::from_value(&json!(null)).unwrap(), None);
        assert_eq!(CronSchedule::from_value(&json!("")).unwrap(), None);
        for bad in [
            json!(5),
            json!({"cron": 5}),
            json!({"cron": "* * * * *", "tz": "UTC"}),
        ] {
            assert!(
                matches!(
                    CronSchedule::from_value(&bad),
                    Err(ScheduleError::Value { .. })
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            CronSchedule::from_value(&json!({"cron": "* * * * *", "timezone": "Mars/Base"})),
            Err(ScheduleError::TimeZone { .. })
        ));
    }
}

//! References to step results and loop variables: the syntax
//! (`createTicket.results.id`, `trigger.results.body["issue"].labels[0]`,
//! `eachItem.currentItem`, `eachItem.index`, `route.branch`) and the lookup of a path
//! inside a JSON value.

use std::fmt;

use serde_json::Value;

/// What a reference reads of its root step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefField {
    /// The step's result (`step.results...`).
    Results,
    /// The branch the step chose (`step.branch`): a branch step's branch, or the
    /// branch an action or trigger returned.
    Branch,
    /// The item of the current iteration of a loop (`loop.currentItem...`).
    CurrentItem,
    /// The 0-based index of the current iteration of a loop (`loop.index`).
    Index,
}

impl RefField {
    fn name(self) -> &'static str {
        match self {
            RefField::Results => "results",
            RefField::Branch => "branch",
            RefField::CurrentItem => "currentItem",
            RefField::Index => "index",
        }
    }
}

/// One segment of a path inside a value: an object key, or (when it is a number) an
/// array index too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// The segment as written.
    pub key: String,
    index: Option<usize>,
}

impl Segment {
    /// A segment for `key`; a key of digits also indexes arrays.
    pub fn new(key: impl Into<String>) -> Self {
        let key = key.into();
        let index = if !key.is_empty() && key.bytes().all(|b| b.is_ascii_digit()) {
            key.parse().ok()
        } else {
            None
        };
        Segment { key, index }
    }
}

/// A parsed reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The step (or `trigger`) the reference starts at.
    pub root: String,
    /// Which value of the root the reference reads.
    pub field: RefField,
    /// The path inside the field's value.
    pub path: Vec<Segment>,
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.root, self.field.name())?;
        for segment in &self.path {
            write!(f, ".{}", segment.key)?;
        }
        Ok(())
    }
}

impl Reference {
    /// Parses `root.field[.path]`. Path segments are separated by `.` and may contain
    /// spaces; `[0]`, `["a key"]` and `['a key']` also work. A leading `$` (Prismatic's
    /// step marker) is ignored.
    pub fn parse(text: &str) -> Result<Reference, String> {
        let text = text.trim();
        let text = text.strip_prefix('$').unwrap_or(text);
        let root_end = text.find(['.', '[']).unwrap_or(text.len());
        let root = &text[..root_end];
        if root.is_empty() {
            return Err(format!("reference `{text}` does not start with a step key"));
        }
        let segments =
            parse_path(&text[root_end..]).map_err(|err| format!("reference `{text}`: {err}"))?;
        let mut segments = segments.into_iter();
        let field = match segments.next().as_ref().map(|segment| segment.key.as_str()) {
            Some("results") => RefField::Results,
            Some("branch") => RefField::Branch,
            Some("currentItem") => RefField::CurrentItem,
            Some("index") => RefField::Index,
            Some(other) => {
                return Err(format!(
                    "reference `{text}`: after `{root}.` comes `results`, `branch`, \
                     `currentItem` or `index`, not `{other}`"
                ));
            }
            None => {
                return Err(format!(
                    "reference `{text}` names a step but no field: write `{root}.results`"
                ));
            }
        };
        let path: Vec<Segment> = segments.collect();
        if matches!(field, RefField::Index | RefField::Branch) && !path.is_empty() {
            return Err(format!(
                "reference `{text}`: `{}` has no fields",
                field.name()
            ));
        }
        Ok(Reference {
            root: root.to_string(),
            field,
            path,
        })
    }
}

/// Parses `.a.b[0]["c d"]` into segments.
fn parse_path(mut rest: &str) -> Result<Vec<Segment>, String> {
    let mut segments = Vec::new();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            let key = &after[..end];
            if key.is_empty() {
                return Err("empty path segment".into());
            }
            segments.push(Segment::new(key));
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let (key, remainder) = match after.chars().next() {
                Some(quote @ ('"' | '\'')) => {
                    let body = &after[1..];
                    let close = body
                        .find(quote)
                        .ok_or_else(|| format!("unclosed {quote} in brackets"))?;
                    let remainder = body[close + 1..]
                        .strip_prefix(']')
                        .ok_or("expected `]` after a quoted key")?;
                    (&body[..close], remainder)
                }
                _ => {
                    let close = after.find(']').ok_or("unclosed `[`")?;
                    let inner = after[..close].trim();
                    if inner.is_empty() || !inner.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(format!(
                            "`[{inner}]`: brackets take an index or a quoted key"
                        ));
                    }
                    (inner, &after[close + 1..])
                }
            };
            segments.push(Segment::new(key));
            rest = remainder;
        } else {
            return Err(format!("unexpected `{rest}`"));
        }
    }
    Ok(segments)
}

/// The value at `path` inside `value`, or `None` (JavaScript's `undefined`) when a
/// segment is missing. A numeric segment indexes an array or names an object key.
pub fn lookup<'a>(mut value: &'a Value, path: &[Segment]) -> Option<&'a Value> {
    for segment in path {
        value = match value {
            Value::Object(map) => map.get(&segment.key)?,
            Value::Array(items) => items.get(segment.index?)?,
            _ => return None,
        };
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys(reference: &Reference) -> Vec<&str> {
        reference.path.iter().map(|s| s.key.as_str()).collect()
    }

    #[test]
    fn parses_dots_brackets_and_spaces() {
        let r = Reference::parse("trigger.results.body.issue.number").unwrap();
        assert_eq!(r.root, "trigger");
        assert_eq!(r.field, RefField::Results);
        assert_eq!(keys(&r), ["body", "issue", "number"]);

        let r = Reference::parse(r#"step.results.key2[1]["a b"]['c.d']"#).unwrap();
        assert_eq!(keys(&r), ["key2", "1", "a b", "c.d"]);

        let r = Reference::parse("deploy.results.webhookUrls.Handle GitHub Updates").unwrap();
        assert_eq!(keys(&r), ["webhookUrls", "Handle GitHub Updates"]);

        let r = Reference::parse("loop.index").unwrap();
        assert_eq!(r.field, RefField::Index);
        assert!(r.path.is_empty());
    }

    #[test]
    fn rejects_malformed_references() {
        for bad in [
            "",
            ".results",
            "step",
            "step.result",
            "step.results..x",
            "step.results[",
            "step.results[x]",
            "step.index.x",
            r#"step.results["a"x"#,
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn looks_up_paths() {
        let value = json!({"a": [{"b": 1}, {"b": 2}], "0": "zero"});
        let path = |text: &str| Reference::parse(&format!("s.results{text}")).unwrap().path;
        assert_eq!(lookup(&value, &path(".a.1.b")), Some(&json!(2)));
        assert_eq!(lookup(&value, &path(".a[0].b")), Some(&json!(1)));
        assert_eq!(lookup(&value, &path(".0")), Some(&json!("zero")));
        assert_eq!(lookup(&value, &path(".a.5")), None);
        assert_eq!(lookup(&value, &path(".a.b")), None);
        assert_eq!(lookup(&value, &[]), Some(&value));
    }
}

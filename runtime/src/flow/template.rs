//! Template inputs: literal text with `{{reference}}` (Prismatic's `{{$reference}}`
//! also works) and `{{#Config Var}}` interpolations, parsed once at validation and
//! rendered per execution.

use serde_json::Value;

use super::expression::js_number_to_string;
use super::reference::Reference;

/// One piece of a template.
#[derive(Debug, Clone, PartialEq)]
pub enum TemplatePart {
    /// Literal text.
    Text(String),
    /// A `{{reference}}` interpolation.
    Reference(Reference),
    /// A `{{#config var}}` interpolation, by the variable's key.
    ConfigVar(String),
}

/// Parses a template. `{{` always opens an interpolation; a lone `}}` is literal.
pub fn parse(text: &str) -> Result<Vec<TemplatePart>, String> {
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            parts.push(TemplatePart::Text(rest[..open].to_string()));
        }
        let after = &rest[open + 2..];
        let close = after.find("}}").ok_or_else(|| {
            format!(
                "`{{{{` at byte {} is never closed with `}}}}`",
                text.len() - rest.len() + open
            )
        })?;
        let inner = after[..close].trim();
        if inner.is_empty() {
            return Err("empty `{{}}` in template".into());
        }
        if let Some(key) = inner.strip_prefix('#') {
            let key = key.trim();
            if key.is_empty() {
                return Err("`{{#}}` names no config variable".into());
            }
            parts.push(TemplatePart::ConfigVar(key.to_string()));
        } else {
            let reference = inner.strip_prefix('$').unwrap_or(inner);
            parts.push(TemplatePart::Reference(Reference::parse(reference)?));
        }
        rest = &after[close + 2..];
    }
    if !rest.is_empty() {
        parts.push(TemplatePart::Text(rest.to_string()));
    }
    Ok(parts)
}

/// Appends a value as template text: strings as they are, numbers as JavaScript
/// prints them, booleans as `true`/`false`, objects and lists as compact JSON, and
/// nothing for `null` or a missing value.
pub fn append_value(out: &mut String, value: Option<&Value>) {
    match value {
        None | Some(Value::Null) => {}
        Some(Value::String(text)) => out.push_str(text),
        Some(Value::Bool(flag)) => out.push_str(if *flag { "true" } else { "false" }),
        Some(Value::Number(number)) => match number.as_f64() {
            Some(float) if number.is_f64() => out.push_str(&js_number_to_string(float)),
            _ => out.push_str(&number.to_string()),
        },
        Some(other) => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_references_and_config_vars() {
        let parts = parse("gh-{{trigger.results.body.issue.number}}/{{#API Base}}!").unwrap();
        assert_eq!(parts.len(), 5);
        assert_eq!(parts[0], TemplatePart::Text("gh-".into()));
        assert!(matches!(&parts[1], TemplatePart::Reference(r) if r.root == "trigger"));
        assert_eq!(parts[3], TemplatePart::ConfigVar("API Base".into()));
        assert_eq!(parts[4], TemplatePart::Text("!".into()));
        let parts = parse("{{$step.results}}").unwrap();
        assert!(matches!(&parts[0], TemplatePart::Reference(r) if r.root == "step"));
        assert_eq!(parse("plain }} text").unwrap().len(), 1);
    }

    #[test]
    fn rejects_malformed_templates() {
        assert!(parse("a {{ b").is_err());
        assert!(parse("{{ }}").is_err());
        assert!(parse("{{#}}").is_err());
        assert!(parse("{{step.nope}}").is_err());
    }

    #[test]
    fn renders_values() {
        let mut out = String::new();
        for value in [
            Some(json!("s")),
            Some(json!(13)),
            Some(json!(1.5)),
            Some(json!(2.0)),
            Some(json!(true)),
            Some(json!(null)),
            None,
            Some(json!({"a": [1]})),
        ] {
            append_value(&mut out, value.as_ref());
            out.push('|');
        }
        assert_eq!(out, "s|13|1.5|2|true|||{\"a\":[1]}|");
    }
}

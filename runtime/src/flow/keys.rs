//! Keys in a definition: the rules for step, flow, component and config-variable
//! keys, and the camelCase reference key Prismatic derives from a display name
//! (seed §1.4), used when a step or flow gives a `name` but no `key`.

/// The key a display name yields, as lodash's `camelCase` does: words are runs of
/// letters or digits, split at case changes (`JSONFrom` → `JSON`, `From`) and at
/// letter/digit boundaries; the first word is lower-cased, the others capitalized.
///
/// ```
/// use sluice_runtime::flow::camel_case_key;
/// assert_eq!(camel_case_key("Download JSON from API"), "downloadJsonFromApi");
/// assert_eq!(camel_case_key("Add 1 to current page value"), "add1ToCurrentPageValue");
/// ```
pub fn camel_case_key(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (index, word) in words(name).iter().enumerate() {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            if index == 0 {
                out.extend(first.to_lowercase());
            } else {
                out.extend(first.to_uppercase());
            }
            for rest in chars {
                out.extend(rest.to_lowercase());
            }
        }
    }
    out
}

fn words(text: &str) -> Vec<String> {
    #[derive(Clone, Copy, PartialEq)]
    enum Class {
        Lower,
        Upper,
        Digit,
        Other,
    }
    let class = |c: char| {
        if c.is_ascii_digit() || (c.is_numeric() && !c.is_alphabetic()) {
            Class::Digit
        } else if c.is_uppercase() {
            Class::Upper
        } else if c.is_alphabetic() {
            Class::Lower
        } else {
            Class::Other
        }
    };
    let chars: Vec<char> = text.chars().collect();
    let mut words = Vec::new();
    let mut current = String::new();
    for (index, &c) in chars.iter().enumerate() {
        let this = class(c);
        if this == Class::Other {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            continue;
        }
        if let Some(&previous) = current.chars().last().as_ref() {
            let previous = class(previous);
            let next = chars.get(index + 1).map(|&n| class(n));
            let split = match (previous, this) {
                (Class::Lower, Class::Upper) => true,
                (Class::Digit, Class::Lower | Class::Upper)
                | (Class::Lower | Class::Upper, Class::Digit) => true,
                // The last capital of an acronym starts the next word: `JSONFrom`.
                (Class::Upper, Class::Upper) => next == Some(Class::Lower),
                _ => false,
            };
            if split {
                words.push(std::mem::take(&mut current));
            }
        }
        current.push(c);
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// The longest key accepted anywhere in a definition.
pub const MAX_KEY_LEN: usize = 128;

/// Checks a step or flow key: it starts a reference (`key.results...`), so it must be
/// an identifier: ASCII letters, digits, `_` and `-`, starting with a letter or `_`.
pub(crate) fn check_step_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("a key must not be empty".into());
    }
    if key.len() > MAX_KEY_LEN {
        return Err(format!("a key is at most {MAX_KEY_LEN} bytes"));
    }
    let mut chars = key.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err(format!(
            "invalid key `{key}`: use ASCII letters, digits, `_` and `-`, starting with a \
             letter or `_`"
        ));
    }
    Ok(())
}

/// Checks a component key: letters, digits, `-` and `_`, starting and ending with a
/// letter or digit (as `docs/manifest.md` says).
pub(crate) fn check_component_key(key: &str) -> Result<(), String> {
    let edges_ok = key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && key
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric());
    if !edges_ok
        || key.len() > MAX_KEY_LEN
        || !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "invalid component key `{key}`: use letters, digits, `-` and `_`, starting and \
             ending with a letter or digit"
        ));
    }
    Ok(())
}

/// Checks a config variable key: letters, digits, spaces, `-` and `_` (seed §1.1: a
/// `.` would make references ambiguous), no leading or trailing space.
pub(crate) fn check_config_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_KEY_LEN || key.trim() != key {
        return Err(format!(
            "invalid config variable key `{key}`: it must be 1 to {MAX_KEY_LEN} bytes without \
             leading or trailing spaces"
        ));
    }
    if let Some(bad) = key
        .chars()
        .find(|&c| !(c.is_alphanumeric() || c == ' ' || c == '-' || c == '_'))
    {
        return Err(format!(
            "invalid config variable key `{key}`: `{bad}` is not allowed (use letters, digits, \
             spaces, `-` and `_`)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_names_match_the_seed_vectors() {
        for (name, key) in [
            ("Download JSON from API", "downloadJsonFromApi"),
            ("Fetch Users List", "fetchUsersList"),
            ("My Integration Trigger", "myIntegrationTrigger"),
            ("Loop Over Users", "loopOverUsers"),
            (
                "Get Ticket By External ID for comment",
                "getTicketByExternalIdForComment",
            ),
            ("Split out external_id", "splitOutExternalId"),
            ("Execution - Get Value", "executionGetValue"),
            ("Flow 2 Trigger", "flow2Trigger"),
            ("Add 1 to current page value", "add1ToCurrentPageValue"),
            ("CSV to YAML", "csvToYaml"),
            ("XMLHttpRequest", "xmlHttpRequest"),
        ] {
            assert_eq!(camel_case_key(name), key, "{name}");
        }
    }

    #[test]
    fn key_rules() {
        assert!(check_step_key("createTicket").is_ok());
        assert!(check_step_key("step_2-b").is_ok());
        assert!(check_step_key("2nd").is_err());
        assert!(check_step_key("a.b").is_err());
        assert!(check_step_key("has space").is_err());
        assert!(check_component_key("hello-flow").is_ok());
        assert!(check_component_key("-x").is_err());
        assert!(check_config_key("GitHub Connection").is_ok());
        assert!(check_config_key("MyApp.com").is_err());
        assert!(check_config_key(" x").is_err());
    }
}

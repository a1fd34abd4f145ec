//! `text`: a utility connector of small text transformations, the kind a low-code flow
//! needs between two services' steps (Prismatic ships the same as "Text Manipulation"):
//! the declarative GitHub-Zendesk sync uses it to turn external id `gh-13` into 13.

use sluice_sdk::prelude::*;

/// Replace every occurrence of a substring.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplaceInput {
    /// The text to change
    pub text: String,
    /// The substring to look for (must not be empty)
    pub find: String,
    /// What replaces each occurrence
    #[serde(default)]
    pub replacement: String,
}

/// Read an integer written in text.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ToIntegerInput {
    /// Decimal digits, optionally signed and surrounded by white space
    pub text: String,
}

/// Every occurrence of `find` in `text` replaced by `replacement`.
pub fn replace(input: &ReplaceInput) -> Result<String, Error> {
    if input.find.is_empty() {
        return Err(Error::invalid_input("`find` must not be empty"));
    }
    Ok(input.text.replace(&input.find, &input.replacement))
}

/// The integer `text` holds.
pub fn to_integer(input: &ToIntegerInput) -> Result<i64, Error> {
    input
        .text
        .trim()
        .parse()
        .map_err(|err| Error::invalid_input(format!("`{}` is not an integer: {err}", input.text)))
}

fn component() -> Component {
    Component::new("text", "0.1.0")
        .label("Text")
        .description("Small text transformations between steps.")
        .action(
            Action::new("replace", |_: &mut Context, input: ReplaceInput| {
                replace(&input)
            })
            .label("Replace")
            .description("Replaces every occurrence of a substring."),
        )
        .action(
            Action::new("toInteger", |_: &mut Context, input: ToIntegerInput| {
                to_integer(&input)
            })
            .label("To integer")
            .description("Reads an integer written in text."),
        )
}

sluice_sdk::export_component!(component);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declaration_is_valid() {
        assert_eq!(component().validate(), Ok(()));
    }

    #[test]
    fn replace_and_parse() {
        let stripped = replace(&ReplaceInput {
            text: "gh-13".into(),
            find: "gh-".into(),
            replacement: String::new(),
        })
        .unwrap();
        assert_eq!(stripped, "13");
        assert_eq!(
            to_integer(&ToIntegerInput {
                text: " -7 ".into()
            })
            .unwrap(),
            -7
        );
        assert!(
            to_integer(&ToIntegerInput {
                text: "gh-13".into()
            })
            .is_err()
        );
        let empty = ReplaceInput {
            text: "x".into(),
            find: String::new(),
            replacement: "y".into(),
        };
        assert!(replace(&empty).is_err());
    }
}

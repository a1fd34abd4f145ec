//! The flow definition parser and validator: any text, read as YAML and as JSON (the two
//! formats `POST /v1/integrations/{key}/versions` and `sluice flow validate` accept),
//! and every definition that parses is validated. Must never panic or hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_runtime::flow::{Definition, Format, validate};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for format in [Format::Yaml, Format::Json] {
        if let Ok(definition) = Definition::parse(text, format) {
            // Without a catalog: everything but the components' actions and schemas.
            let _ = validate(&definition, None);
        }
    }
});

//! Template rendering: the first line of the input is a template (`{{step.results.x}}`,
//! `{{$ref}}`, `{{#Config var}}`), the rest a JSON context it is rendered against
//! (`{"<step>": <results>, "config": {...}}`). Parsing and rendering must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sluice_runtime::flow::reference::lookup;
use sluice_runtime::flow::template::{self, TemplatePart};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (source, context) = text.split_once('\n').unwrap_or((text, ""));
    let context: Value = serde_json::from_str(context).unwrap_or(Value::Null);
    let Ok(parts) = template::parse(source) else {
        return;
    };
    let mut out = String::new();
    for part in &parts {
        match part {
            TemplatePart::Text(text) => out.push_str(text),
            TemplatePart::Reference(reference) => {
                // Error messages print references: printing must not panic either.
                std::hint::black_box(reference.to_string());
                template::append_value(
                    &mut out,
                    context
                        .get(&reference.root)
                        .and_then(|root| lookup(root, &reference.path)),
                );
            }
            TemplatePart::ConfigVar(key) => template::append_value(
                &mut out,
                context.get("config").and_then(|config| config.get(key)),
            ),
        }
    }
    // Every JSON number of the context printed as JavaScript would.
    if let Value::Array(items) = &context {
        for item in items {
            if let Some(number) = item.as_f64() {
                out.push_str(&sluice_runtime::flow::expression::js_number_to_string(
                    number,
                ));
            }
        }
    }
    std::hint::black_box(out);
});

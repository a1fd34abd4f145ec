//! Guest-side bindings of the `sluice:flow@0.1.0` WIT package for Rust authors.
//!
//! [`component`] holds the bindings of the `component` world (connectors) and
//! [`flow`] those of the `flow` world (code-native flows). Each module carries an
//! export macro (`sluice_sdk::component::export_component!` /
//! `sluice_sdk::flow::export_flow!`) that registers the author's implementation of the
//! world's exports.

/// Bindings of the `component` world: implement
/// [`component::exports::sluice::flow::connector::Guest`] and call
/// `sluice_sdk::component::export_component!(MyType)`.
pub mod component {
    wit_bindgen::generate!({
        path: "../wit",
        world: "sluice:flow/component",
        pub_export_macro: true,
        export_macro_name: "export_component",
        default_bindings_module: "sluice_sdk::component",
        generate_all,
    });
}

/// Bindings of the `flow` world: implement
/// [`flow::exports::sluice::flow::code_flow::Guest`] and call
/// `sluice_sdk::flow::export_flow!(MyType)`.
pub mod flow {
    wit_bindgen::generate!({
        path: "../wit",
        world: "sluice:flow/flow",
        pub_export_macro: true,
        export_macro_name: "export_flow",
        default_bindings_module: "sluice_sdk::flow",
        generate_all,
    });
}

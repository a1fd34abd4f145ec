//! Raw wit-bindgen output for the `sluice:flow@0.1.0` worlds: one set of host-function
//! bindings and types (generated with the `flow` world, a superset of the component's
//! imports) shared by the `component` world's exports. The SDK's typed API sits on top.

/// Bindings of the `flow` world. Every import of both worlds (and the shared types)
/// is generated here, once; the `flow` export (`code-flow`) and its export macro too.
pub mod flow {
    wit_bindgen::generate!({
        path: "../wit",
        world: "sluice:flow/flow",
        pub_export_macro: true,
        export_macro_name: "export_flow",
        default_bindings_module: "sluice_sdk::bindings::flow",
        generate_all,
    });
}

/// Bindings of the `component` world: only its export (`connector`) and export macro
/// are generated; every import maps onto [`flow`]'s modules, so a connector and a flow
/// share one `Output`, one `Error`, one `log::write`.
///
/// A connector built from this crate imports only what it calls: wit-component drops
/// unused imports (so `invoker` never appears), and the `code-flow` export is only
/// described by `export_flow!`, which a connector never expands.
pub mod component {
    wit_bindgen::generate!({
        path: "../wit",
        world: "sluice:flow/component",
        pub_export_macro: true,
        export_macro_name: "export_component",
        default_bindings_module: "sluice_sdk::bindings::component",
        with: {
            "sluice:flow/types@0.1.0": crate::bindings::flow::sluice::flow::types,
            "sluice:flow/log@0.1.0": crate::bindings::flow::sluice::flow::log,
            "sluice:flow/state@0.1.0": crate::bindings::flow::sluice::flow::state,
            "sluice:flow/connections@0.1.0": crate::bindings::flow::sluice::flow::connections,
            "sluice:flow/config@0.1.0": crate::bindings::flow::sluice::flow::config,
            "sluice:flow/context@0.1.0": crate::bindings::flow::sluice::flow::context,
            "wasi:http/types@0.2.12": crate::bindings::flow::wasi::http::types,
            "wasi:http/outgoing-handler@0.2.12": crate::bindings::flow::wasi::http::outgoing_handler,
            "wasi:io/poll@0.2.12": crate::bindings::flow::wasi::io::poll,
            "wasi:io/error@0.2.12": crate::bindings::flow::wasi::io::error,
            "wasi:io/streams@0.2.12": crate::bindings::flow::wasi::io::streams,
            "wasi:clocks/monotonic-clock@0.2.12": crate::bindings::flow::wasi::clocks::monotonic_clock,
            "wasi:clocks/wall-clock@0.2.12": crate::bindings::flow::wasi::clocks::wall_clock,
            "wasi:random/random@0.2.12": crate::bindings::flow::wasi::random::random,
        },
    });
}

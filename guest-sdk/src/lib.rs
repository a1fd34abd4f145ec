//! The Rust SDK for Sluice components (connectors) and code-native flows, built for
//! `wasm32-wasip2` against the `sluice:flow@0.1.0` WIT package.
//!
//! Declare a connector once with [`Component`] (actions, triggers, data sources and
//! connection types, each with a typed input whose JSON Schema the SDK derives) and
//! register it with [`export_component!`]; the SDK writes the manifest and dispatches
//! every call. A code-native flow is a [`Flow`] registered with [`export_flow!`].
//! Handlers get a [`Context`] (execution metadata, [`State`], [`Connection`]s, config),
//! log with [`info!`] and friends, call APIs with [`Http`], and fail with an [`Error`]
//! whose kind tells the host what to do. `guest-sdk/README.md` is the tutorial.
//!
//! | Module | Owns |
//! |---|---|
//! | [`connector`] | [`Component`], [`Action`], [`Trigger`], [`DataSource`], [`ConnectionType`]; manifest and dispatch |
//! | [`code_flow`] | [`Flow`], [`FlowTrigger`], [`FlowContext`] (`invoke`, `invoke_flow`, `invoke_flow_async`) |
//! | [`context`] | [`Context`], [`State`] / [`Scope`], [`Connection`] |
//! | [`http`] | [`Http`] client over `wasi:http` |
//! | [`trigger`] | [`Request`], [`TriggerResponse`], [`HttpResponse`] |
//! | [`hmac`] | GitHub- and Zendesk-style webhook signatures |
//! | [`oauth2`] | [`oauth2::OAuth2`]: the OAuth 2.0 settings of a connection type |
//! | [`log`] | [`log::Level`] and the functions behind the logging macros |
//! | [`output`] | [`Output`], [`Data`], [`IntoOutput`] |
//! | [`error`](mod@error) | [`Error`] |
//! | [`schema`] | [`schema::input_schema`], [`NoInput`] |

#[doc(hidden)]
pub mod bindings;
pub mod code_flow;
pub mod connector;
pub mod context;
pub mod error;
pub mod hmac;
pub mod http;
pub mod log;
pub mod oauth2;
pub mod output;
pub mod schema;
pub mod trigger;

pub use code_flow::{Flow, FlowContext, FlowTrigger};
pub use connector::{
    Action, Component, ConnectionType, DataSource, DataSourceType, PicklistItem,
    SynchronousResponse, Trigger,
};
pub use context::{Connection, Context, OAuthToken, Scope, State};
pub use error::Error;
pub use http::{Http, RequestBuilder, Response};
pub use output::{Data, IntoOutput, Output};
pub use schema::NoInput;
pub use trigger::{HttpResponse, Request, TriggerResponse};

/// The crates a component's types derive from, re-exported so an author can check
/// which versions the SDK expects (`schemars` 1.x, `serde` 1.x).
pub use {schemars, serde, serde_json};

/// Everything a component or flow author needs in scope:
/// `use sluice_sdk::prelude::*;`.
pub mod prelude {
    pub use crate::{
        Action, Component, Connection, ConnectionType, Context, Data, DataSource, DataSourceType,
        Error, Flow, FlowContext, FlowTrigger, Http, HttpResponse, NoInput, Output, PicklistItem,
        Request, Scope, SynchronousResponse, Trigger, TriggerResponse,
    };
    pub use crate::{debug, error, info, trace, warn};
    pub use schemars::JsonSchema;
    pub use serde::{Deserialize, Serialize};
    pub use serde_json::{Value, json};
}

/// Exports a connector: `sluice_sdk::export_component!(component);` where
/// `fn component() -> Component` declares it. Generates the implementation of the
/// WIT `connector` exports; call it once per crate.
#[macro_export]
macro_rules! export_component {
    ($declare:path) => {
        const _: () = {
            struct __SluiceConnector;

            fn __sluice_component() -> $crate::Component {
                $declare()
            }

            impl $crate::bindings::component::exports::sluice::flow::connector::Guest
                for __SluiceConnector
            {
                fn manifest() -> ::std::string::String {
                    $crate::connector::export::manifest(&__sluice_component())
                }

                fn run_action(
                    ctx: $crate::__private::ExecutionContext,
                    action: ::std::string::String,
                    input: ::std::string::String,
                ) -> ::std::result::Result<$crate::__private::Output, $crate::__private::Error>
                {
                    $crate::connector::export::run_action(
                        &__sluice_component(),
                        ctx,
                        &action,
                        &input,
                    )
                }

                fn run_trigger(
                    ctx: $crate::__private::ExecutionContext,
                    trigger: ::std::string::String,
                    request: $crate::__private::HttpRequest,
                    inputs: ::std::string::String,
                ) -> ::std::result::Result<
                    $crate::__private::TriggerOutcome,
                    $crate::__private::Error,
                > {
                    $crate::connector::export::run_trigger(
                        &__sluice_component(),
                        ctx,
                        &trigger,
                        request,
                        &inputs,
                    )
                }

                fn run_data_source(
                    ctx: $crate::__private::ExecutionContext,
                    name: ::std::string::String,
                    input: ::std::string::String,
                ) -> ::std::result::Result<::std::string::String, $crate::__private::Error>
                {
                    $crate::connector::export::run_data_source(
                        &__sluice_component(),
                        ctx,
                        &name,
                        &input,
                    )
                }

                fn on_instance_deploy(
                    ctx: $crate::__private::ExecutionContext,
                    trigger: ::std::string::String,
                    inputs: ::std::string::String,
                ) -> ::std::result::Result<(), $crate::__private::Error> {
                    $crate::connector::export::on_instance_hook(
                        &__sluice_component(),
                        ctx,
                        &trigger,
                        &inputs,
                        true,
                    )
                }

                fn on_instance_remove(
                    ctx: $crate::__private::ExecutionContext,
                    trigger: ::std::string::String,
                    inputs: ::std::string::String,
                ) -> ::std::result::Result<(), $crate::__private::Error> {
                    $crate::connector::export::on_instance_hook(
                        &__sluice_component(),
                        ctx,
                        &trigger,
                        &inputs,
                        false,
                    )
                }
            }

            $crate::bindings::component::export_component!(
                __SluiceConnector with_types_in $crate::bindings::component
            );
        };
    };
}

/// Exports a code-native flow: `sluice_sdk::export_flow!(flow);` where
/// `fn flow() -> Flow` declares it. Generates the implementation of the WIT
/// `code-flow` exports; call it once per crate.
#[macro_export]
macro_rules! export_flow {
    ($declare:path) => {
        const _: () = {
            struct __SluiceFlow;

            fn __sluice_flow() -> $crate::Flow {
                $declare()
            }

            impl $crate::bindings::flow::exports::sluice::flow::code_flow::Guest for __SluiceFlow {
                fn manifest() -> ::std::string::String {
                    $crate::code_flow::export::manifest(&__sluice_flow())
                }

                fn on_execution(
                    ctx: $crate::__private::ExecutionContext,
                    payload: ::std::string::String,
                ) -> ::std::result::Result<$crate::__private::Output, $crate::__private::Error>
                {
                    $crate::code_flow::export::on_execution(&__sluice_flow(), ctx, &payload)
                }
            }

    $crate::bindings::flow::export_flow!(__SluiceFlow with_types_in $crate::bindings::flow);
        };
    };
}

/// Names the export macros use; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::bindings::flow::sluice::flow::types::{
        Error, ExecutionContext, HttpRequest, Output, TriggerOutcome,
    };
}

/// The raw bindings of the `component` world under their original paths
/// (`sluice_sdk::component::sluice::flow::state`, `...::exports::sluice::flow::connector::Guest`,
/// `sluice_sdk::component::export_component!`), for guests that implement the WIT
/// exports by hand. New code should use [`Component`].
#[doc(hidden)]
pub mod component {
    pub use crate::bindings::component::{export_component, exports};
    pub use crate::bindings::flow::wasi;

    /// The `sluice:flow` interfaces a connector may import.
    pub mod sluice {
        pub mod flow {
            pub use crate::bindings::flow::sluice::flow::{
                config, connections, context, log, state, types,
            };
        }
    }
}

/// The raw bindings of the `flow` world under their original paths
/// (`sluice_sdk::flow::sluice::flow::invoker`, `sluice_sdk::flow::export_flow!`), for
/// flows that implement the WIT exports by hand. New code should use [`Flow`].
#[doc(hidden)]
pub mod flow {
    pub use crate::bindings::flow::{export_flow, exports, sluice, wasi};
}

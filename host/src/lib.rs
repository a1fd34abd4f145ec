//! The `sluice` host: the server (HTTP API, webhook ingress, executions, durable
//! store) and the command-line tool, built on `sluice-runtime`. The binary in
//! `main.rs` only parses, sets up logging and dispatches; everything it runs lives here
//! so it can be tested and reused.

pub mod api;
pub mod app;
pub mod capabilities;
pub mod cli;
pub mod config;
pub mod crossflow;
pub mod datasources;
pub mod embed;
pub mod execution;
pub mod ingress;
pub mod instances;
pub mod integrations;
pub mod leases;
pub mod oauth;
pub mod process;
pub mod queue;
pub mod ratelimit;
pub mod registry;
pub mod retention;
pub mod scheduler;
pub mod secrets;
pub mod server;
pub mod store;
pub mod worker;

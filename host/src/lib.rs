//! The `sluice` host: the command-line tool (and, later, the server) built on
//! `sluice-runtime`. The binary in `main.rs` only parses, sets up logging and
//! dispatches; everything it runs lives here so it can be tested and reused.

pub mod cli;

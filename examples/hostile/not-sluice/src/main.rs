//! `not-sluice`: an ordinary Rust program built for wasm32-wasip2, i.e. a component of
//! the `wasi:cli/command` world. It exports `wasi:cli/run` instead of the Sluice
//! `connector` or `code-flow` interfaces, so the host must refuse to load it.

fn main() {
    println!("hello from a wasi:cli command, not a Sluice guest");
}

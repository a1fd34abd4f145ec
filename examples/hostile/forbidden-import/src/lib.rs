//! `forbidden-import`: a component of the right world that also imports
//! `wasi:sockets` interfaces, because its action opens a TCP connection with
//! `std::net::TcpStream`. Sluice links no sockets, so the host must refuse it at load
//! time rather than fail on first use. The connect sits on the exported action's path,
//! so the linker cannot drop it and the imports survive into the built component.

use hostile_support::{Error, Output};
use std::net::TcpStream;

hostile_support::hostile_connector!(
    key: "forbidden-import",
    description: "Opens a TCP socket, which Sluice does not provide.",
    run: run,
);

fn run(_input: String) -> Result<Output, Error> {
    match TcpStream::connect("127.0.0.1:9") {
        Ok(_) => Err(Error::Fatal(
            "connected, which a Sluice host must never allow".to_string(),
        )),
        Err(e) => Err(Error::Fatal(format!("connect failed: {e}"))),
    }
}

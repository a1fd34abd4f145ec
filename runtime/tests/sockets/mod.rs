//! Counting a test's outbound sockets from `/proc/net/tcp`: shared by the runtime's and
//! the host's egress tests (the host's include it by path).

use std::collections::HashSet;

/// Client sockets of this network namespace connected (or connecting) to `port`, from
/// `/proc/net/tcp`.
///
/// Counted by local address, once each: the kernel writes the table in several reads,
/// and a table that changes between them (other tests open and close sockets) can list
/// one socket twice.
pub fn sockets_to(port: u16) -> usize {
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
        panic!("cannot read /proc/net/tcp");
    };
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let remote_port = fields
                .get(2)
                .and_then(|remote| remote.split(':').nth(1))
                .and_then(|hex| u16::from_str_radix(hex, 16).ok());
            // 01 ESTABLISHED, 02 SYN_SENT.
            (remote_port == Some(port) && matches!(fields.get(3), Some(&"01" | &"02")))
                .then(|| fields.get(1).map(|local| local.to_string()))
                .flatten()
        })
        .collect::<HashSet<String>>()
        .len()
}

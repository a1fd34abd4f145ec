//! `spin`: a hostile guest whose action never returns and never calls the host.
//! Only the host's CPU budget (epoch interruption or fuel) can stop it, so it tests
//! that a guest cannot hold an executor thread forever.

use hostile_support::{Error, Output};
use std::hint::black_box;

hostile_support::hostile_connector!(
    key: "spin",
    description: "Loops forever without calling the host.",
    run: run,
);

fn run(_input: String) -> Result<Output, Error> {
    // black_box makes every iteration observable, so the optimiser cannot prove the
    // loop side-effect free and replace it with a trap or delete it.
    let mut n: u64 = 0;
    loop {
        n = black_box(n.wrapping_add(1));
    }
}

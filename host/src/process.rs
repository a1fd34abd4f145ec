//! What the host process knows about itself through the kernel: its peak memory and
//! its resource limits. The server, `sluice run` and the compile worker read and set
//! these; nothing here touches a guest.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Raises the soft limit on open files (`RLIMIT_NOFILE`) to the hard limit, and
/// returns the soft limit in force afterwards (`None` when it is unlimited or the
/// kernel does not say). The default soft limit (often 1,024) is what a flood of
/// connections exhausts; the hard limit is what the operator allowed.
pub fn raise_open_files_limit() -> Option<u64> {
    let current = getrlimit(Resource::Nofile);
    let soft = current.current?;
    if current.maximum.is_some_and(|hard| soft >= hard) {
        return Some(soft);
    }
    let raised = Rlimit {
        current: current.maximum,
        maximum: current.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => getrlimit(Resource::Nofile).current,
        Err(_) => Some(soft),
    }
}

/// Peak resident set size of this process in bytes (`getrusage(RUSAGE_SELF)`), or 0
/// when the kernel does not say. The runtime's compile worker reports the same figure.
pub fn max_rss_bytes() -> u64 {
    sluice_runtime::compile::self_max_rss_bytes()
}

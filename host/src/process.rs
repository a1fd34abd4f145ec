//! What the host process knows about itself through the kernel: its peak memory and
//! its resource limits. The server, `sluice run` and the compile worker read and set
//! these; nothing here touches a guest.

/// Raises the soft limit on open files (`RLIMIT_NOFILE`) to the hard limit, and
/// returns the soft limit in force afterwards (`None` when the kernel does not say).
/// The default soft limit (often 1,024) is what a flood of connections exhausts; the
/// hard limit is what the operator allowed.
pub fn raise_open_files_limit() -> Option<libc::rlim_t> {
    let mut limit = std::mem::MaybeUninit::<libc::rlimit>::zeroed();
    // SAFETY: `getrlimit` writes an `rlimit` into the pointer it is given, which
    // points to a zeroed, properly aligned value owned by this frame; it is read only
    // when the call succeeded.
    let current = unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, limit.as_mut_ptr()) != 0 {
            return None;
        }
        limit.assume_init()
    };
    if current.rlim_cur >= current.rlim_max {
        return Some(current.rlim_cur);
    }
    let raised = libc::rlimit {
        rlim_cur: current.rlim_max,
        rlim_max: current.rlim_max,
    };
    // SAFETY: `setrlimit` only reads the `rlimit` behind the reference, a valid value
    // for the whole call; raising the soft limit up to the hard one needs no
    // privilege, and on failure nothing changed.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
        Some(raised.rlim_cur)
    } else {
        Some(current.rlim_cur)
    }
}

/// Peak resident set size of this process in bytes (`getrusage(RUSAGE_SELF)`), or 0
/// when the kernel does not say. The runtime's compile worker reports the same figure.
pub fn max_rss_bytes() -> u64 {
    sluice_runtime::compile::self_max_rss_bytes()
}

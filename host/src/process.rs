//! What the host process knows about itself through the kernel: its peak memory and
//! its resource limits. The server, `sluice run` and the compile worker read and set
//! these; nothing here touches a guest.

/// Peak resident set size of this process in bytes (`getrusage(RUSAGE_SELF)`), or 0
/// when the kernel does not say.
pub fn max_rss_bytes() -> u64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `getrusage` writes a `rusage` into the pointer it is given, which points
    // to a zeroed, properly aligned value owned by this frame; on failure it writes
    // nothing and the zeroed value is still a valid `rusage` (all integers).
    let usage = unsafe {
        if libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) != 0 {
            return 0;
        }
        usage.assume_init()
    };
    // Linux reports kilobytes.
    u64::try_from(usage.ru_maxrss)
        .unwrap_or(0)
        .saturating_mul(1024)
}

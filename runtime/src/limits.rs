//! Per-execution budgets ([`Limits`]) and the memory limiter that enforces the memory
//! budget over the sum of all linear memories of an instance plus the host memory held
//! on the guest's behalf (`wasi:http` resources, charged by `capabilities::http_memory`).
//!
//! Where each limit is enforced: fuel by `Store::set_fuel` (sandbox), memory here,
//! wall clock by the epoch deadline plus a tokio timeout (sandbox), output by the
//! sandbox after the call, log volume, state sizes and host calls by the capabilities.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use wasmtime::ResourceLimiter;

/// Budgets of one execution.
///
/// ```
/// use std::time::Duration;
/// use sluice_runtime::Limits;
///
/// let limits = Limits::default()
///     .fuel(50_000_000)
///     .memory_bytes(32 << 20)
///     .timeout(Duration::from_secs(2));
/// assert_eq!(limits.fuel, 50_000_000);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    /// Fuel units (about one per wasm instruction) for instantiation and the call.
    pub fuel: u64,
    /// Memory in bytes, summed over every linear memory of the instance and the host
    /// memory held for it in `wasi:http` resources (fields, requests, bodies, responses).
    pub memory_bytes: u64,
    /// Wall-clock deadline for instantiation and the call, host calls included.
    #[serde(with = "duration_ms", rename = "timeoutMs")]
    pub timeout: Duration,
    /// Largest output (data plus headers) in bytes.
    pub output_bytes: usize,
    /// Total log volume in bytes (messages plus fields); exceeding it ends the execution.
    pub log_bytes: usize,
    /// A single log message longer than this is truncated (not an error).
    pub log_line_bytes: usize,
    /// Largest state value in bytes (canonical JSON).
    pub state_value_bytes: usize,
    /// Largest state key in bytes.
    pub state_key_bytes: usize,
    /// Host function calls allowed; a guest spinning on host calls is stopped here.
    pub host_calls: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: 10_000_000_000,
            memory_bytes: 64 << 20,
            timeout: Duration::from_secs(30),
            output_bytes: 8 << 20,
            log_bytes: 1 << 20,
            log_line_bytes: 4096,
            state_value_bytes: 1 << 20,
            state_key_bytes: 1024,
            host_calls: 1_000_000,
        }
    }
}

impl Limits {
    /// Sets [`Limits::fuel`].
    pub fn fuel(mut self, fuel: u64) -> Self {
        self.fuel = fuel;
        self
    }

    /// Sets [`Limits::memory_bytes`].
    pub fn memory_bytes(mut self, bytes: u64) -> Self {
        self.memory_bytes = bytes;
        self
    }

    /// Sets [`Limits::timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets [`Limits::output_bytes`].
    pub fn output_bytes(mut self, bytes: usize) -> Self {
        self.output_bytes = bytes;
        self
    }

    /// Sets [`Limits::log_bytes`].
    pub fn log_bytes(mut self, bytes: usize) -> Self {
        self.log_bytes = bytes;
        self
    }

    /// Sets [`Limits::host_calls`].
    pub fn host_calls(mut self, calls: u64) -> Self {
        self.host_calls = calls;
        self
    }

    /// Checks the limits against what the runtime can provide.
    pub(crate) fn validate(&self, max_memory_bytes: u64) -> Result<(), String> {
        if self.memory_bytes > max_memory_bytes {
            return Err(format!(
                "memory budget of {} bytes exceeds the runtime's maximum of {max_memory_bytes} bytes",
                self.memory_bytes
            ));
        }
        if self.memory_bytes == 0 || self.fuel == 0 || self.timeout.is_zero() {
            return Err("fuel, memory and timeout must all be greater than zero".into());
        }
        Ok(())
    }
}

mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(deserializer)?))
    }
}

/// Enforces [`Limits::memory_bytes`] over all linear memories of one store plus the
/// host memory charged to it ([`MemoryLimiter::charge_host`]), and records the peak of
/// that sum for metering.
///
/// A denied growth makes `memory.grow` return -1, as the spec says, so a guest may
/// recover; `denied` remembers it so that the trap a Rust guest raises on allocation
/// failure is reported as a memory-limit outcome rather than an opaque trap. A denied
/// host charge is remembered the same way, and the host call that asked for it traps.
#[derive(Debug)]
pub(crate) struct MemoryLimiter {
    limit: usize,
    /// Sum of the linear memories' sizes.
    total: usize,
    /// Host memory currently charged (held for the guest, released when freed).
    host: usize,
    peak: usize,
    denied: Option<usize>,
}

/// A host allocation on a guest's behalf would exceed the execution's memory budget.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "memory limit of {limit} bytes exceeded: the host would hold {host} bytes for the guest on top of {linear} bytes of linear memory"
)]
pub(crate) struct HostMemoryExceeded {
    pub(crate) limit: usize,
    pub(crate) linear: usize,
    pub(crate) host: usize,
}

impl MemoryLimiter {
    pub(crate) fn new(limit: u64) -> Self {
        MemoryLimiter {
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
            total: 0,
            host: 0,
            peak: 0,
            denied: None,
        }
    }

    /// Highest total of linear memory sizes plus host charges seen, in bytes.
    pub(crate) fn peak(&self) -> usize {
        self.peak
    }

    /// The total a denied growth or host charge asked for, if any was denied.
    pub(crate) fn denied(&self) -> Option<usize> {
        self.denied
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// Host memory currently charged, in bytes.
    #[cfg(test)]
    pub(crate) fn host_bytes(&self) -> usize {
        self.host
    }

    /// Charges `bytes` of host memory held for the guest. Past the budget nothing is
    /// charged, the denial is remembered (so the execution ends as `memory-limit`) and
    /// the caller must fail the host call.
    pub(crate) fn charge_host(&mut self, bytes: usize) -> Result<(), HostMemoryExceeded> {
        let host = self.host.saturating_add(bytes);
        let total = self.total.saturating_add(host);
        if total > self.limit {
            self.denied = Some(total);
            return Err(HostMemoryExceeded {
                limit: self.limit,
                linear: self.total,
                host,
            });
        }
        self.host = host;
        self.peak = self.peak.max(total);
        Ok(())
    }

    /// Gives back a charge once the host no longer holds the memory.
    pub(crate) fn release_host(&mut self, bytes: usize) {
        self.host = self.host.saturating_sub(bytes);
    }
}

// Tables hold funcrefs, bounded by the pool's `table_elements`; guests have no reason
// to grow them past this.
const MAX_TABLE_ELEMENTS: usize = 100_000;

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.total.saturating_sub(current).saturating_add(desired);
        // Host charges count too: a guest holding 60 MiB of headers cannot then grow
        // its linear memory by another 60 MiB.
        let with_host = total.saturating_add(self.host);
        if with_host > self.limit {
            self.denied = Some(with_host);
            return Ok(false);
        }
        self.total = total;
        self.peak = self.peak.max(with_host);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_memories_and_denies_past_the_limit() {
        let mut limiter = MemoryLimiter::new(10 << 16);
        // Two memories of 4 pages each fit in 10 pages...
        assert!(limiter.memory_growing(0, 4 << 16, None).unwrap());
        assert!(limiter.memory_growing(0, 4 << 16, None).unwrap());
        // ...but growing the first to 7 pages would make 11.
        assert!(!limiter.memory_growing(4 << 16, 7 << 16, None).unwrap());
        assert_eq!(limiter.denied(), Some(11 << 16));
        assert_eq!(limiter.peak(), 8 << 16);
        // Growing it to 6 pages makes exactly 10.
        assert!(limiter.memory_growing(4 << 16, 6 << 16, None).unwrap());
        assert_eq!(limiter.peak(), 10 << 16);
    }

    #[test]
    fn host_charges_share_the_budget_with_linear_memory() {
        let mut limiter = MemoryLimiter::new(10 << 16);
        assert!(limiter.memory_growing(0, 4 << 16, None).unwrap());
        limiter.charge_host(5 << 16).unwrap();
        assert_eq!(limiter.peak(), 9 << 16);
        // Linear memory cannot take what the host holds...
        assert!(!limiter.memory_growing(4 << 16, 6 << 16, None).unwrap());
        assert_eq!(limiter.denied(), Some(11 << 16));
        // ...nor can the host take what linear memory holds.
        let err = limiter.charge_host(2 << 16).unwrap_err();
        assert_eq!(err.host, 7 << 16);
        assert_eq!(limiter.host_bytes(), 5 << 16);
        // Released charges make room again.
        limiter.release_host(5 << 16);
        assert!(limiter.memory_growing(4 << 16, 10 << 16, None).unwrap());
        assert_eq!(limiter.peak(), 10 << 16);
        assert_eq!(limiter.host_bytes(), 0);
    }

    #[test]
    fn limits_are_checked_against_the_runtime() {
        assert!(Limits::default().validate(256 << 20).is_ok());
        assert!(
            Limits::default()
                .memory_bytes(1 << 30)
                .validate(256 << 20)
                .is_err()
        );
        assert!(Limits::default().fuel(0).validate(256 << 20).is_err());
    }
}

//! The logs of one step: a [`LogSink`] that keeps the lines a step writes, for the
//! execution record, while still forwarding each line to the caller's sink.

use std::sync::{Arc, Mutex, PoisonError};

use crate::{LogRecord, LogSink};

/// Collects one step's log lines and forwards them.
pub(crate) struct StepLogSink {
    forward: Arc<dyn LogSink>,
    records: Mutex<Vec<LogRecord>>,
}

impl StepLogSink {
    pub(crate) fn new(forward: Arc<dyn LogSink>) -> Self {
        StepLogSink {
            forward,
            records: Mutex::new(Vec::new()),
        }
    }

    /// The lines written so far, removed from the sink.
    pub(crate) fn take(&self) -> Vec<LogRecord> {
        std::mem::take(&mut *self.records.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl LogSink for StepLogSink {
    fn write(&self, record: LogRecord) {
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(record.clone());
        self.forward.write(record);
    }
}

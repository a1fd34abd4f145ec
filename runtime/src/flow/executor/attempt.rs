//! Attempts: the one classification of how a sandboxed call (or a flow call) ended,
//! and the one retry loop that action steps, `invokeFlow` steps and a code-native
//! flow's `invoke` and `invoke-flow` calls all run their attempts through.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::options::{Sleeper, limits_before};
use crate::flow::definition::ErrorHandler;
use crate::flow::logs::StepLogSink;
use crate::flow::plan::ErrorPolicy;
use crate::flow::record::{AttemptRecord, StepError, StepErrorKind, StepRecord, micros};
use crate::{
    Call, Capabilities, ExecuteError, ExecutionContext, ExecutionReport, GuestError,
    GuestErrorKind, Limits, LoadedComponent, LogRecord, LogSink, Outcome, Output, Returned,
    Runtime,
};

/// A failed attempt: the step error, and whether retrying can help.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AttemptError {
    pub error: StepError,
    pub retryable: bool,
}

impl AttemptError {
    pub(crate) fn new(kind: StepErrorKind, message: impl Into<String>, retryable: bool) -> Self {
        AttemptError {
            error: StepError::new(kind, message),
            retryable,
        }
    }

    /// The error as the `error` a code-native flow receives from `invoke` or
    /// `invoke-flow`: guest error kinds pass through; other failures become
    /// `retryable` when retrying can help, else `fatal`, their kind kept in the
    /// message.
    pub(crate) fn to_guest_error(&self) -> GuestError {
        let error = &self.error;
        let (kind, message) = match error.kind.guest_kind() {
            Some(kind) => (kind, error.message.clone()),
            None if self.retryable => (GuestErrorKind::Retryable, error.to_string()),
            None => (GuestErrorKind::Fatal, error.to_string()),
        };
        GuestError {
            kind,
            message,
            connection: error.connection.clone(),
        }
    }
}

/// A guest's (or a launcher's) error: retryable exactly when its kind says so.
impl From<GuestError> for AttemptError {
    fn from(error: GuestError) -> Self {
        let retryable = error.kind == GuestErrorKind::Retryable;
        AttemptError {
            error: error.into(),
            retryable,
        }
    }
}

/// How a sandbox outcome ends an attempt. Only what retrying can fix is retryable: a
/// guest's `retryable` error and a timeout.
pub(crate) fn classify_outcome(outcome: Outcome) -> Result<Returned, AttemptError> {
    match outcome {
        Outcome::Completed { result } => Ok(result),
        Outcome::GuestError { error } => Err(error.into()),
        other => {
            let retryable = matches!(other, Outcome::Timeout { .. });
            // `of_outcome` names every outcome but the two matched above.
            let kind = StepErrorKind::of_outcome(&other).unwrap_or(StepErrorKind::Host);
            Err(AttemptError::new(kind, outcome_message(&other), retryable))
        }
    }
}

/// How what `Runtime::execute` returned ends an attempt, its outcome and metering
/// noted in the attempt's `record`.
pub(crate) fn classify(
    result: Result<ExecutionReport, ExecuteError>,
    record: &mut AttemptRecord,
) -> Result<Returned, AttemptError> {
    match result {
        Err(err) => Err(classify_execute_error(&err)),
        Ok(ExecutionReport { outcome, metering }) => {
            record.outcome = outcome.status().to_string();
            record.fuel_used = metering.fuel_used;
            record.peak_memory_bytes = metering.peak_memory_bytes;
            classify_outcome(outcome)
        }
    }
}

/// A sandbox that did not run the guest. `busy` (every slot stayed taken for the
/// runtime's bounded wait) and an instance that could not be created are retryable:
/// the host may answer 503 or queue the execution again.
fn classify_execute_error(err: &ExecuteError) -> AttemptError {
    let kind = match err {
        ExecuteError::Busy { .. } => StepErrorKind::Busy,
        _ => StepErrorKind::Host,
    };
    let retryable = matches!(
        err,
        ExecuteError::Busy { .. } | ExecuteError::Instantiate(_)
    );
    AttemptError::new(kind, err.to_string(), retryable)
}

/// The message of a sandbox outcome other than completion or a guest error.
fn outcome_message(outcome: &Outcome) -> String {
    match outcome {
        Outcome::OutOfFuel { limit } => format!("ran out of fuel (limit {limit})"),
        Outcome::MemoryLimit { limit, requested } => {
            format!("asked for {requested} bytes of memory; the limit is {limit}")
        }
        Outcome::Timeout { limit_ms } => format!("did not finish within {limit_ms} ms"),
        Outcome::Trap {
            message, stderr, ..
        } => match stderr {
            Some(stderr) => format!("trapped: {message} ({stderr})"),
            None => format!("trapped: {message}"),
        },
        Outcome::OutputTooLarge { size, limit } => {
            format!("returned {size} bytes; the limit is {limit}")
        }
        Outcome::InvalidOutput { message } => message.clone(),
        Outcome::LogLimit { limit } => format!("wrote more than {limit} bytes of logs"),
        Outcome::HostCallLimit { limit } => format!("made more than {limit} host calls"),
        Outcome::Completed { .. } | Outcome::GuestError { .. } => String::new(),
    }
}

/// An action's result: its output, or an `invalid-output` error when it returned
/// anything else.
pub(crate) fn action_output(returned: Returned) -> Result<Output, AttemptError> {
    match returned {
        Returned::Output(output) => Ok(output),
        _ => Err(AttemptError::new(
            StepErrorKind::InvalidOutput,
            "the action returned no output",
            false,
        )),
    }
}

/// What a code-native flow's `invoke` returns for the outcome of the action it called:
/// the engine's invoker (through [`SandboxCall::run`], [`action_output`] and
/// [`AttemptError::to_guest_error`]) and the test harness answer alike, so component
/// authors test against the error kinds a server applies.
#[cfg(any(test, feature = "harness"))]
pub(crate) fn invoke_result(outcome: Outcome) -> Result<Output, GuestError> {
    classify_outcome(outcome)
        .and_then(action_output)
        .map_err(|failed| failed.to_guest_error())
}

/// What `invoke` returns when the sandbox could not run the action at all.
#[cfg(any(test, feature = "harness"))]
pub(crate) fn invoke_refused(err: &ExecuteError) -> GuestError {
    classify_execute_error(err).to_guest_error()
}

/// One attempt's ending: its record, the logs its sandbox wrote, and its result.
pub(crate) struct Attempted<T> {
    pub record: AttemptRecord,
    pub logs: Vec<LogRecord>,
    pub ended: Result<T, AttemptError>,
}

impl<T> Attempted<T> {
    fn map<U>(self, f: impl FnOnce(T) -> Result<U, AttemptError>) -> Attempted<U> {
        Attempted {
            record: self.record,
            logs: self.logs,
            ended: self.ended.and_then(f),
        }
    }
}

/// What a step attempts, once per attempt.
pub(crate) trait Attempts: Send {
    type Output: Send;

    /// Makes attempt `number` (1 for the first) after waiting `delay_ms`; `last` says
    /// no retry follows, so the attempt may give its input away instead of copying it.
    fn attempt(
        &mut self,
        number: u32,
        delay_ms: u64,
        last: bool,
    ) -> impl Future<Output = Attempted<Self::Output>> + Send;
}

/// The policy of a call made once (a code-native flow's `invoke` and `invoke-flow`:
/// the flow decides itself whether to call again).
pub(crate) const ONE_ATTEMPT: ErrorPolicy = ErrorPolicy {
    handler: ErrorHandler::Fail,
    max_retries: 0,
    delay_seconds: 0,
    exponential: false,
    ignore_final_error: false,
};

/// Runs `attempts` as `policy` says, recording each attempt in `record`: again after a
/// retryable failure while retries are left, waiting the policy's delay (doubled each
/// time when exponential) through the engine's sleeper, never past `deadline`.
pub(crate) async fn run_attempts<A: Attempts>(
    attempts: &mut A,
    policy: &ErrorPolicy,
    deadline: Option<Instant>,
    sleeper: &dyn Sleeper,
    record: &mut StepRecord,
) -> Result<A::Output, AttemptError> {
    let mut number = 1;
    let mut delay_ms = 0;
    loop {
        let retries_left = policy.handler == ErrorHandler::Retry && number <= policy.max_retries;
        let Attempted {
            record: mut attempt,
            logs,
            ended,
        } = attempts.attempt(number, delay_ms, !retries_left).await;
        if let Err(failed) = &ended {
            attempt.error = Some(failed.error.clone());
        }
        add_attempt(record, attempt, logs);
        let failed = match ended {
            Ok(output) => return Ok(output),
            Err(failed) => failed,
        };
        if !(retries_left && failed.retryable) {
            return Err(failed);
        }
        let factor = if policy.exponential {
            1u64 << (number - 1).min(16)
        } else {
            1
        };
        delay_ms = u64::from(policy.delay_seconds) * 1000 * factor;
        if let Some(deadline) = deadline
            && Instant::now() + Duration::from_millis(delay_ms) >= deadline
        {
            // Waiting would outlive the execution: the last error stands.
            return Err(failed);
        }
        sleeper.sleep(Duration::from_millis(delay_ms)).await;
        number += 1;
    }
}

/// Adds one attempt to a step record: fuel is summed, peak memory the highest.
pub(crate) fn add_attempt(record: &mut StepRecord, attempt: AttemptRecord, logs: Vec<LogRecord>) {
    record.fuel_used = record.fuel_used.saturating_add(attempt.fuel_used);
    record.peak_memory_bytes = record.peak_memory_bytes.max(attempt.peak_memory_bytes);
    record.attempts.push(attempt);
    record.logs.extend(logs);
}

/// One sandboxed call of a step: which component, with what capabilities, context
/// and limits. Each attempt gets a log sink of its own, so its lines go to its record.
pub(crate) struct SandboxCall<'a> {
    pub runtime: &'a Runtime,
    pub component: &'a LoadedComponent,
    /// The execution's capabilities; the log sink is replaced per attempt.
    pub caps: &'a Capabilities,
    /// Where the attempts' log lines go on to (the execution's sink).
    pub log: &'a Arc<dyn LogSink>,
    /// The step's context; `attempt` is set per attempt.
    pub context: &'a ExecutionContext,
    pub limits: &'a Limits,
    pub deadline: Option<Instant>,
}

impl SandboxCall<'_> {
    /// Runs `call` once and classifies how it ended.
    pub(crate) async fn run(&self, call: Call, number: u32, delay_ms: u64) -> Attempted<Returned> {
        let sink = Arc::new(StepLogSink::new(Arc::clone(self.log)));
        let caps = Capabilities {
            log: sink.clone(),
            ..self.caps.clone()
        };
        let context = ExecutionContext {
            attempt: number,
            ..self.context.clone()
        };
        let started = Instant::now();
        let result = self
            .runtime
            .execute(
                self.component,
                call,
                context,
                &caps,
                &limits_before(self.limits, self.deadline),
            )
            .await;
        let mut record = AttemptRecord {
            attempt: number,
            outcome: "not-run".into(),
            delay_before_ms: delay_ms,
            duration_us: micros(started.elapsed()),
            fuel_used: 0,
            peak_memory_bytes: 0,
            error: None,
        };
        let ended = classify(result, &mut record);
        Attempted {
            record,
            logs: sink.take(),
            ended,
        }
    }
}

/// The attempts of an action: `run-action` in a sandbox, its output the result.
pub(crate) struct ActionAttempts<'a> {
    pub sandbox: SandboxCall<'a>,
    pub action: &'a str,
    pub input: String,
}

impl Attempts for ActionAttempts<'_> {
    type Output = Output;

    async fn attempt(&mut self, number: u32, delay_ms: u64, last: bool) -> Attempted<Output> {
        let input = if last {
            std::mem::take(&mut self.input)
        } else {
            self.input.clone()
        };
        let call = Call::Action {
            action: self.action.to_string(),
            input,
        };
        self.sandbox
            .run(call, number, delay_ms)
            .await
            .map(action_output)
    }
}

/// A call made once whatever its policy (a trigger, a code-native flow's
/// `on-execution`): its result as the sandbox returned it.
pub(crate) struct SingleCall<'a> {
    pub sandbox: SandboxCall<'a>,
    pub call: Call,
}

impl Attempts for SingleCall<'_> {
    type Output = Returned;

    async fn attempt(&mut self, number: u32, delay_ms: u64, last: bool) -> Attempted<Returned> {
        let call = if last {
            std::mem::replace(&mut self.call, Call::Manifest)
        } else {
            self.call.clone()
        };
        self.sandbox.run(call, number, delay_ms).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_attempts_map_to_guest_errors() {
        let error = AttemptError::new(StepErrorKind::Retryable, "later", false).to_guest_error();
        assert_eq!(
            (error.kind, error.message.as_str()),
            (GuestErrorKind::Retryable, "later")
        );
        let error =
            AttemptError::new(StepErrorKind::Timeout, "did not finish", true).to_guest_error();
        assert_eq!(error.kind, GuestErrorKind::Retryable);
        assert_eq!(error.message, "timeout: did not finish");
        let error = AttemptError::new(StepErrorKind::OutOfFuel, "ran out", false).to_guest_error();
        assert_eq!(error.kind, GuestErrorKind::Fatal);
    }
}

//! The exit codes of every `sluice` command, in one place so scripts can rely on
//! them: they separate "the guest failed" from "a limit stopped it" from "the
//! command itself was wrong", which a caller handles in three different ways.

use std::process::ExitCode;

/// How a command ended, as seen by the shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// The call completed.
    Success,
    /// The guest returned an error, trapped, or returned invalid output.
    GuestFailure,
    /// A budget (fuel, memory, time, output, logs, host calls) ended the execution.
    LimitHit,
    /// Bad usage or an invalid component (`EX_USAGE` of sysexits.h).
    Usage,
    /// Sluice itself failed: the engine could not start, stdout is gone... (`EX_SOFTWARE`).
    Internal,
}

impl ExitStatus {
    /// The numeric exit code.
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::GuestFailure => 1,
            ExitStatus::LimitHit => 2,
            ExitStatus::Usage => 64,
            ExitStatus::Internal => 70,
        }
    }
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> Self {
        ExitCode::from(status.code())
    }
}

/// The exit-code table shown at the end of `--help`.
pub(crate) const EXIT_CODES_HELP: &str = "\
Exit codes:
  0   the call completed
  1   the guest returned an error, trapped, or returned invalid output
  2   a limit ended the execution (fuel, memory, time, output, logs, host calls)
  64  bad usage or an invalid component
  70  internal error";

//! Storage of executions. (Methods are added by the executions API work.)

use async_trait::async_trait;

#[async_trait]
pub trait ExecutionStore: Send + Sync {}

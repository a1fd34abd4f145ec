//! Storage of instances. (Methods are added by the instances API work.)

use async_trait::async_trait;

#[async_trait]
pub trait InstanceStore: Send + Sync {}

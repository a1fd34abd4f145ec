//! Storage of customers. (Methods are added by the customers API work.)

use async_trait::async_trait;

#[async_trait]
pub trait CustomerStore: Send + Sync {}

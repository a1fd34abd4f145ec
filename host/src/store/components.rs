//! Storage of components. (Methods are added by the components API work.)

use async_trait::async_trait;

#[async_trait]
pub trait ComponentStore: Send + Sync {}

//! Storage of integrations. (Methods are added by the integrations API work.)

use async_trait::async_trait;

#[async_trait]
pub trait IntegrationStore: Send + Sync {}

//! [`IntegrationStore`] on SQLite.

use super::SqliteStore;
use crate::store::IntegrationStore;

impl IntegrationStore for SqliteStore {}

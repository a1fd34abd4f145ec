//! [`ExecutionStore`] on SQLite.

use super::SqliteStore;
use crate::store::ExecutionStore;

impl ExecutionStore for SqliteStore {}

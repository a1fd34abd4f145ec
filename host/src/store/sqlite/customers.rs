//! [`CustomerStore`] on SQLite.

use super::SqliteStore;
use crate::store::CustomerStore;

impl CustomerStore for SqliteStore {}

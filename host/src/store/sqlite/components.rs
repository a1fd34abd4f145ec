//! [`ComponentStore`] on SQLite.

use super::SqliteStore;
use crate::store::ComponentStore;

impl ComponentStore for SqliteStore {}

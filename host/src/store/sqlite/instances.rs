//! [`InstanceStore`] on SQLite.

use super::SqliteStore;
use crate::store::InstanceStore;

impl InstanceStore for SqliteStore {}

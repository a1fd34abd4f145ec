//! Queries of a versioned resource: rows numbered from 1 per tenant and key
//! (`component_versions`, `integration_versions`), read one by a column, all of a key
//! in order, or the latest of every key with its count of versions.

use deadpool_sqlite::rusqlite::{self, Connection, OptionalExtension, Row, ToSql, params};

use super::sql;
use crate::store::StoreError;

/// A row type of a versioned table. Its table and columns are constants of the code,
/// never client input, so the statements below can be put together with `format!`.
pub(super) trait Versioned: Sized {
    /// The table, keyed by `(tenant_id, key, version)`.
    const TABLE: &'static str;
    /// The columns [`from_row`](Self::from_row) reads, in its order, comma-separated.
    const COLUMNS: &'static str;

    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self>;
}

/// The tenant's version of `key` whose `column` equals `value` (`version`, or the
/// content hash that makes an upload a repeat of an existing version).
pub(super) fn find<V: Versioned>(
    connection: &Connection,
    tenant: &str,
    key: &str,
    column: &str,
    value: &dyn ToSql,
) -> Result<Option<V>, StoreError> {
    connection
        .query_row(
            &format!(
                "SELECT {} FROM {} WHERE tenant_id = ?1 AND key = ?2 AND {column} = ?3",
                V::COLUMNS,
                V::TABLE
            ),
            params![tenant, key, value],
            V::from_row,
        )
        .optional()
        .map_err(sql)
}

/// Every version of the tenant's `key`, oldest first.
pub(super) fn all<V: Versioned>(
    connection: &Connection,
    tenant: &str,
    key: &str,
) -> Result<Vec<V>, StoreError> {
    let mut statement = connection
        .prepare(&format!(
            "SELECT {} FROM {} WHERE tenant_id = ?1 AND key = ?2 ORDER BY version",
            V::COLUMNS,
            V::TABLE
        ))
        .map_err(sql)?;
    let rows = statement
        .query_map(params![tenant, key], V::from_row)
        .map_err(sql)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(sql)
}

/// The latest version of each of the tenant's keys, by key, with how many versions
/// the key has.
pub(super) fn latest<V: Versioned>(
    connection: &Connection,
    tenant: &str,
) -> Result<Vec<(V, i64)>, StoreError> {
    let columns: Vec<String> = V::COLUMNS
        .split(',')
        .map(|column| format!("v.{}", column.trim()))
        .collect();
    let table = V::TABLE;
    let mut statement = connection
        .prepare(&format!(
            "SELECT {}, c.count
             FROM {table} v
             JOIN (SELECT key, MAX(version) AS latest, COUNT(*) AS count
                   FROM {table} WHERE tenant_id = ?1 GROUP BY key) c
               ON c.key = v.key AND c.latest = v.version
             WHERE v.tenant_id = ?1
             ORDER BY v.key",
            columns.join(", ")
        ))
        .map_err(sql)?;
    // The count follows the row's own columns.
    let count_at = columns.len();
    let rows = statement
        .query_map([tenant], |row| Ok((V::from_row(row)?, row.get(count_at)?)))
        .map_err(sql)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(sql)
}

//! Talking to the database: connect, create or check the schema, write batches.

use std::str::FromStr;

use smart_meter_core::Decimal;
use sqlx::any::{AnyConnectOptions, AnyRow};
use sqlx::{AnyConnection, AssertSqlSafe, ConnectOptions, Connection, Row};

use super::aggregate::{AggValue, Bucket, Mode};
use super::dialect::Dialect;
use super::encode::{compat_binds, CompatRow, HistoryRow, COMPAT_COLUMNS};
use super::Layout;

/// The schema version this code writes. Bump it with a new step in `migrate_table`.
pub const SCHEMA_VERSION: i64 = 1;

/// Most rows per `INSERT` statement (keeps bind counts far below every backend's limit).
const ROWS_PER_STATEMENT: usize = 200;

/// What the writer needs to know about the database.
#[derive(Clone, Debug)]
pub struct Target {
    /// Backend.
    pub dialect: Dialect,
    /// Table layout.
    pub layout: Layout,
    /// History table name.
    pub history: String,
    /// Aggregate table name.
    pub aggregate: String,
    /// Aggregation mode.
    pub mode: Mode,
}

/// A unit of work in the sink's queue.
#[derive(Clone, Debug)]
pub enum Item {
    /// One reading's history rows (normalised layout).
    History(Vec<HistoryRow>),
    /// One reading in the predecessor layout.
    CompatHistory(Box<CompatRow>),
    /// A closed aggregation bucket.
    Aggregate(Bucket),
}

impl Item {
    /// Readings this item stands for (aggregates count as none: they are derived).
    pub fn readings(&self) -> u64 {
        match self {
            Item::History(_) | Item::CompatHistory(_) => 1,
            Item::Aggregate(_) => 0,
        }
    }
}

/// A failure, classified by what the writer should do about it.
#[derive(Debug)]
pub enum DbError {
    /// Connection lost, server down, timeout, lock: reconnect and retry.
    Transient(sqlx::Error),
    /// The database refused the data (a value out of range, a constraint): retrying the same
    /// rows cannot help.
    Rejected(sqlx::Error),
    /// The configuration cannot work (a table with another layout, a newer schema version).
    Fatal(String),
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DbError::Transient(e) | DbError::Rejected(e) => e.fmt(f),
            DbError::Fatal(m) => f.write_str(m),
        }
    }
}

/// Sorts a driver error into transient or rejected. Rejected: SQLSTATE classes 22 (data
/// exception) and 23 (integrity) on PostgreSQL and MariaDB/MySQL; SQLite's TOOBIG,
/// CONSTRAINT, MISMATCH and RANGE. Everything else (I/O, protocol, "database is locked",
/// "read-only database", a server shutting down) is worth retrying.
pub fn classify(dialect: Dialect, e: sqlx::Error) -> DbError {
    let rejected = match &e {
        sqlx::Error::Database(db) => match (dialect, db.code()) {
            (Dialect::Sqlite, Some(code)) => code
                .parse::<i32>()
                .is_ok_and(|c| matches!(c & 0xff, 18 | 19 | 20 | 25)),
            (Dialect::MySql | Dialect::Postgres, Some(code)) => {
                code.starts_with("22") || code.starts_with("23")
            }
            (_, None) => false,
        },
        sqlx::Error::Encode(_) => true,
        _ => false,
    };
    if rejected {
        DbError::Rejected(e)
    } else {
        DbError::Transient(e)
    }
}

/// The URL the driver gets: SQLite files are created when missing (`mode=rwc`) unless the
/// URL sets a mode.
pub fn driver_url(url: &str) -> String {
    if Dialect::from_url(url) == Some(Dialect::Sqlite)
        && !url.contains("mode=")
        && !url.contains(":memory:")
    {
        let sep = if url.contains('?') { '&' } else { '?' };
        return format!("{url}{sep}mode=rwc");
    }
    url.to_string()
}

/// The file of a `sqlite:` URL (`sqlite://data/readings.db` → `data/readings.db`), `None` for
/// in-memory databases.
pub fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or("");
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    Some(std::path::PathBuf::from(path))
}

/// Opens a connection (SQLite: creating the folder first).
pub async fn connect(url: &str, dialect: Dialect) -> Result<AnyConnection, DbError> {
    sqlx::any::install_default_drivers();
    if let Some(dir) = sqlite_path(url)
        .as_deref()
        .and_then(std::path::Path::parent)
        .filter(|d| !d.as_os_str().is_empty())
    {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| DbError::Transient(sqlx::Error::Io(e)))?;
    }
    let options = AnyConnectOptions::from_str(&driver_url(url))
        .map_err(|e| DbError::Fatal(format!("invalid url: {e}")))?;
    let mut conn = options.connect().await.map_err(|e| classify(dialect, e))?;
    if dialect == Dialect::MySql {
        // A value out of range must be an error, not silently clamped (servers without strict
        // mode would store a wrong number).
        exec(
            &mut conn,
            dialect,
            "SET SESSION sql_mode = CONCAT_WS(',', NULLIF(@@SESSION.sql_mode, ''), 'STRICT_TRANS_TABLES')"
                .to_string(),
        )
        .await?;
    }
    Ok(conn)
}

async fn exec(conn: &mut AnyConnection, dialect: Dialect, sql: String) -> Result<(), DbError> {
    sqlx::query(AssertSqlSafe(sql))
        .execute(&mut *conn)
        .await
        .map(|_| ())
        .map_err(|e| classify(dialect, e))
}

/// Creates the schema-version table and both tables, or checks and migrates existing ones.
pub async fn migrate(conn: &mut AnyConnection, target: &Target) -> Result<(), DbError> {
    let d = target.dialect;
    exec(conn, d, d.create_schema_table()).await?;
    let (history_kind, aggregate_kind) = match target.layout {
        Layout::Normalized => ("normalized-history", "normalized-aggregate"),
        Layout::EvnDecrypter => ("evn-decrypter", "evn-decrypter"),
    };
    migrate_table(conn, target, &target.history, history_kind).await?;
    migrate_table(conn, target, &target.aggregate, aggregate_kind).await
}

async fn migrate_table(
    conn: &mut AnyConnection,
    target: &Target,
    table: &str,
    kind: &str,
) -> Result<(), DbError> {
    let d = target.dialect;
    let row = sqlx::query(AssertSqlSafe(d.select_schema_row()))
        .bind(table)
        .fetch_optional(&mut *conn)
        .await
        .map_err(|e| classify(d, e))?;
    let (ddl, columns): (String, Vec<&str>) = match kind {
        "normalized-history" => (
            d.create_history(table),
            vec!["meter", "ts", "code", "value", "value_text", "unit"],
        ),
        "normalized-aggregate" => (
            d.create_aggregate(table),
            vec!["meter", "ts", "code", "value", "unit", "samples"],
        ),
        _ => {
            let mut c = vec!["id", "timestamp"];
            c.extend(COMPAT_COLUMNS.iter().map(|(n, _)| *n));
            (d.create_compat(table), c)
        }
    };
    match row {
        None => {
            // New to this gateway. CREATE … IF NOT EXISTS also adopts a table the predecessor
            // created, as long as its columns match (checked below).
            exec(conn, d, ddl).await?;
            probe(conn, d, table, &columns, kind).await?;
            sqlx::query(AssertSqlSafe(d.insert_schema_row()))
                .bind(table)
                .bind(kind)
                .bind(SCHEMA_VERSION)
                .execute(&mut *conn)
                .await
                .map_err(|e| classify(d, e))?;
            Ok(())
        }
        Some(row) => {
            let layout: String = row.try_get(0).map_err(|e| classify(d, e))?;
            let version: i64 = row.try_get(1).map_err(|e| classify(d, e))?;
            if layout != kind {
                return Err(DbError::Fatal(format!(
                    "table {table} was created with layout {layout}, but this sink writes {kind}; \
                     choose other table names or the matching layout"
                )));
            }
            if version > SCHEMA_VERSION {
                return Err(DbError::Fatal(format!(
                    "table {table} has schema version {version}, newer than this gateway's \
                     {SCHEMA_VERSION}; upgrade the gateway"
                )));
            }
            // Version 1 is the first; later versions add their steps here, each followed by
            // an UPDATE of the version row, so an interrupted migration resumes.
            // The table may have been dropped by hand: recreate it.
            exec(conn, d, ddl).await?;
            probe(conn, d, table, &columns, kind).await
        }
    }
}

async fn probe(
    conn: &mut AnyConnection,
    d: Dialect,
    table: &str,
    columns: &[&str],
    kind: &str,
) -> Result<(), DbError> {
    match sqlx::query(AssertSqlSafe(d.probe(table, columns)))
        .fetch_optional(&mut *conn)
        .await
    {
        Ok(_) => Ok(()),
        Err(e @ sqlx::Error::Database(_)) => Err(DbError::Fatal(format!(
            "table {table} exists but lacks the columns of layout {kind} ({}): {e}; \
             choose another table name or layout",
            columns.join(", ")
        ))),
        Err(e) => Err(classify(d, e)),
    }
}

/// Writes `items` in one transaction.
pub async fn write(
    conn: &mut AnyConnection,
    target: &Target,
    items: &[Item],
) -> Result<(), DbError> {
    let d = target.dialect;
    let mut tx = conn.begin().await.map_err(|e| classify(d, e))?;
    let history: Vec<&HistoryRow> = items
        .iter()
        .filter_map(|i| match i {
            Item::History(rows) => Some(rows.iter()),
            _ => None,
        })
        .flatten()
        .collect();
    for chunk in history.chunks(ROWS_PER_STATEMENT) {
        let sql = d.insert_history(&target.history, chunk.len());
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for r in chunk {
            // A number the column cannot hold is kept as text rather than lost.
            let (num, text) = match r.value.map(|v| (v, d.decimal_text(v))) {
                Some((_, Some(n))) => (Some(n), r.text.clone()),
                Some((v, None)) => (None, Some(v.to_string())),
                None => (None, r.text.clone()),
            };
            q = q
                .bind(r.meter.clone())
                .bind(d.time_text(r.ts_ms))
                .bind(r.code.clone())
                .bind(num)
                .bind(text)
                .bind(r.unit.clone());
        }
        q.execute(&mut *tx).await.map_err(|e| classify(d, e))?;
    }
    let compat: Vec<&CompatRow> = items
        .iter()
        .filter_map(|i| match i {
            Item::CompatHistory(r) => Some(r.as_ref()),
            _ => None,
        })
        .collect();
    for chunk in compat.chunks(ROWS_PER_STATEMENT) {
        let rows: Vec<_> = chunk.iter().map(|r| (r.ts_ms, r.values)).collect();
        insert_compat(&mut tx, d, &target.history, &rows).await?;
    }
    for item in items {
        if let Item::Aggregate(bucket) = item {
            write_bucket(&mut tx, target, bucket).await?;
        }
    }
    tx.commit().await.map_err(|e| classify(d, e))
}

async fn insert_compat(
    conn: &mut AnyConnection,
    d: Dialect,
    table: &str,
    rows: &[(i64, [Decimal; 11])],
) -> Result<(), DbError> {
    let mut q = sqlx::query(AssertSqlSafe(d.insert_compat(table, rows.len())));
    for (ts_ms, values) in rows {
        let b = compat_binds(*ts_ms, values);
        q = q.bind(b.timestamp);
        for i in b.integers {
            q = q.bind(i);
        }
        for f in b.floats {
            q = q.bind(f);
        }
    }
    q.execute(&mut *conn)
        .await
        .map(|_| ())
        .map_err(|e| classify(d, e))
}

async fn write_bucket(
    conn: &mut AnyConnection,
    target: &Target,
    bucket: &Bucket,
) -> Result<(), DbError> {
    let d = target.dialect;
    match target.layout {
        Layout::Normalized => {
            let bucket = if bucket.may_exist {
                let existing = read_aggregate(conn, d, &target.aggregate, bucket).await?;
                bucket.merge_existing(target.mode, &existing)
            } else {
                bucket.clone()
            };
            let rows: Vec<(&AggValue, String)> = bucket
                .values
                .iter()
                .filter_map(|v| d.decimal_text(v.value).map(|t| (v, t)))
                .collect();
            for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                let mut q = sqlx::query(AssertSqlSafe(
                    d.upsert_aggregate(&target.aggregate, chunk.len()),
                ));
                for (v, text) in chunk {
                    q = q
                        .bind(bucket.meter.clone())
                        .bind(d.time_text(bucket.start_ms))
                        .bind(v.code.clone())
                        .bind(text.clone())
                        .bind(v.unit.clone())
                        .bind(i64::try_from(v.samples).unwrap_or(i64::MAX));
                }
                q.execute(&mut *conn).await.map_err(|e| classify(d, e))?;
            }
            Ok(())
        }
        Layout::EvnDecrypter => write_compat_bucket(conn, target, bucket).await,
    }
}

async fn read_aggregate(
    conn: &mut AnyConnection,
    d: Dialect,
    table: &str,
    bucket: &Bucket,
) -> Result<Vec<AggValue>, DbError> {
    let rows: Vec<AnyRow> = sqlx::query(AssertSqlSafe(d.select_aggregate(table)))
        .bind(bucket.meter.clone())
        .bind(d.time_text(bucket.start_ms))
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| classify(d, e))?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let code: String = row.try_get(0).map_err(|e| classify(d, e))?;
        let value: String = row.try_get(1).map_err(|e| classify(d, e))?;
        let unit: Option<String> = row.try_get(2).map_err(|e| classify(d, e))?;
        let samples: i64 = row.try_get(3).map_err(|e| classify(d, e))?;
        if let Ok(value) = value.parse::<Decimal>() {
            out.push(AggValue::stored(
                code,
                value,
                u64::try_from(samples).unwrap_or(0),
                unit,
            ));
        }
    }
    Ok(out)
}

/// The predecessor layout has no key column: a bucket is one row holding all eleven values,
/// stamped with the chosen sample's time (`first`, `last`) or the bucket start (`mean`,
/// `min`, `max`). A row already in the bucket (written before a restart) wins for `first`;
/// otherwise it is merged (counting as one sample for `mean`: the table has no count) and
/// replaced.
async fn write_compat_bucket(
    conn: &mut AnyConnection,
    target: &Target,
    bucket: &Bucket,
) -> Result<(), DbError> {
    let d = target.dialect;
    let table = &target.aggregate;
    let start_s = bucket.start_ms.div_euclid(1000);
    let end_s = start_s.saturating_add(bucket.interval_ms.div_euclid(1000).max(1));
    let mut merged = bucket.clone();
    let ts_ms = match target.mode {
        Mode::First => bucket.first_ms,
        Mode::Last => bucket.last_ms,
        Mode::Mean | Mode::Min | Mode::Max => bucket.start_ms,
    };
    if bucket.may_exist {
        let row = sqlx::query(AssertSqlSafe(d.select_compat_bucket(table)))
            .bind(start_s)
            .bind(end_s)
            .fetch_optional(&mut *conn)
            .await
            .map_err(|e| classify(d, e))?;
        if let Some(row) = row {
            if target.mode == Mode::First {
                return Ok(());
            }
            let mut existing = Vec::with_capacity(COMPAT_COLUMNS.len());
            for (i, (name, _)) in COMPAT_COLUMNS.iter().enumerate() {
                let text: Option<String> = row.try_get(i + 1).map_err(|e| classify(d, e))?;
                if let Some(v) = text.and_then(|t| t.parse::<Decimal>().ok()) {
                    existing.push(AggValue::stored((*name).to_string(), v, 1, None));
                }
            }
            merged = bucket.merge_existing(target.mode, &existing);
            exec_bind2(conn, d, d.delete_compat_bucket(table), start_s, end_s).await?;
        }
    }
    let mut values = [Decimal::ZERO; 11];
    for (slot, (name, _)) in values.iter_mut().zip(COMPAT_COLUMNS) {
        match merged.values.iter().find(|v| v.code == name) {
            Some(v) => *slot = v.value,
            // Every compat reading has all eleven values; a bucket without one is empty.
            None => return Ok(()),
        }
    }
    insert_compat(conn, d, table, &[(ts_ms, values)]).await
}

async fn exec_bind2(
    conn: &mut AnyConnection,
    d: Dialect,
    sql: String,
    a: i64,
    b: i64,
) -> Result<(), DbError> {
    sqlx::query(AssertSqlSafe(sql))
        .bind(a)
        .bind(b)
        .execute(&mut *conn)
        .await
        .map(|_| ())
        .map_err(|e| classify(d, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_sqlite_files_unless_a_mode_is_given() {
        assert_eq!(
            driver_url("sqlite://data/readings.db"),
            "sqlite://data/readings.db?mode=rwc"
        );
        assert_eq!(driver_url("sqlite://a.db?mode=ro"), "sqlite://a.db?mode=ro");
        assert_eq!(
            driver_url("sqlite://a.db?cache=shared"),
            "sqlite://a.db?cache=shared&mode=rwc"
        );
        assert_eq!(driver_url("sqlite::memory:"), "sqlite::memory:");
        assert_eq!(driver_url("postgres://h/db"), "postgres://h/db");
    }

    #[test]
    fn finds_the_sqlite_file() {
        assert_eq!(
            sqlite_path("sqlite://data/readings.db"),
            Some("data/readings.db".into())
        );
        assert_eq!(
            sqlite_path("sqlite:///var/lib/sm/r.db?mode=rwc"),
            Some("/var/lib/sm/r.db".into())
        );
        assert_eq!(sqlite_path("sqlite:r.db"), Some("r.db".into()));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("mysql://h/db"), None);
    }
}

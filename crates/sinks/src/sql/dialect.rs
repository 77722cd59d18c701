//! The SQL text of the three backends: quoting, placeholders, column types and the statements
//! the sink runs. Pure string building, so every statement is unit-tested without a server.
//!
//! Values are bound as parameters, never spliced into SQL. Only table names (validated to
//! `[A-Za-z_][A-Za-z0-9_]*` by `Config::validate`) and fixed column names end up in the text,
//! always quoted.

use std::fmt::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use smart_meter_core::time::format_utc;
use smart_meter_core::Decimal;

use super::encode::COMPAT_COLUMNS;

/// Fractional digits kept in MariaDB/MySQL `DECIMAL` columns.
pub const MYSQL_SCALE: u8 = 9;
/// Integer digits that fit a MariaDB/MySQL `DECIMAL(38, 9)` column.
const MYSQL_INT_DIGITS: usize = 29;
/// Longest text value stored; longer ones are cut at a character boundary.
pub const TEXT_MAX: usize = 255;
/// Longest sample key (`code` column).
pub const CODE_MAX: usize = 64;
/// Longest unit symbol.
pub const UNIT_MAX: usize = 16;
/// The table recording which tables this gateway created, with layout and version.
pub const SCHEMA_TABLE: &str = "smart_meter_schema";

/// A database backend, chosen by the URL scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// `sqlite:` — an embedded file.
    Sqlite,
    /// `mysql:` / `mariadb:`.
    MySql,
    /// `postgres:` / `postgresql:`.
    Postgres,
}

impl Dialect {
    /// The backend of a connection URL, from its scheme.
    pub fn from_url(url: &str) -> Option<Dialect> {
        let scheme = url.split_once(':')?.0.to_ascii_lowercase();
        match scheme.as_str() {
            "sqlite" => Some(Dialect::Sqlite),
            "mysql" | "mariadb" => Some(Dialect::MySql),
            "postgres" | "postgresql" => Some(Dialect::Postgres),
            _ => None,
        }
    }

    /// A quoted identifier. Names are validated before they get here; a quote character inside
    /// is doubled anyway.
    pub fn ident(self, name: &str) -> String {
        match self {
            Dialect::MySql => format!("`{}`", name.replace('`', "``")),
            Dialect::Sqlite | Dialect::Postgres => format!("\"{}\"", name.replace('"', "\"\"")),
        }
    }

    /// The `n`-th (1-based) bind placeholder.
    fn param(self, n: usize) -> String {
        match self {
            Dialect::Postgres => format!("${n}"),
            Dialect::Sqlite | Dialect::MySql => "?".into(),
        }
    }

    /// A placeholder for an exact decimal bound as text.
    fn num_param(self, n: usize) -> String {
        match self {
            Dialect::Postgres => format!("CAST(${n} AS NUMERIC)"),
            Dialect::Sqlite | Dialect::MySql => "?".into(),
        }
    }

    /// A placeholder for a timestamp bound as text (see [`Dialect::time_text`]).
    fn ts_param(self, n: usize) -> String {
        match self {
            Dialect::Postgres => format!("CAST(${n} AS TIMESTAMPTZ)"),
            Dialect::Sqlite | Dialect::MySql => "?".into(),
        }
    }

    fn ts_type(self) -> &'static str {
        match self {
            Dialect::Postgres => "TIMESTAMPTZ(3)",
            Dialect::MySql => "DATETIME(3)",
            Dialect::Sqlite => "TEXT",
        }
    }

    fn num_type(self) -> &'static str {
        match self {
            Dialect::Postgres => "NUMERIC",
            Dialect::MySql => "DECIMAL(38,9)",
            Dialect::Sqlite => "TEXT",
        }
    }

    fn long_text_type(self) -> &'static str {
        match self {
            Dialect::MySql => "VARCHAR(255)",
            Dialect::Sqlite | Dialect::Postgres => "TEXT",
        }
    }

    fn count_type(self) -> &'static str {
        match self {
            Dialect::Sqlite => "INTEGER",
            Dialect::MySql | Dialect::Postgres => "BIGINT",
        }
    }

    fn table_suffix(self) -> &'static str {
        match self {
            Dialect::MySql => " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
            Dialect::Sqlite | Dialect::Postgres => "",
        }
    }

    /// The SQL type to cast a column to for reading it back as text.
    fn text_cast(self) -> &'static str {
        match self {
            Dialect::MySql => "CHAR",
            Dialect::Sqlite | Dialect::Postgres => "TEXT",
        }
    }

    /// `CAST(col AS TEXT)` (or `CHAR`), to read any column back as text through the `Any`
    /// driver.
    pub fn as_text(self, column: &str) -> String {
        format!("CAST({} AS {})", self.ident(column), self.text_cast())
    }

    /// An expression giving a timestamp column as milliseconds since the epoch (used by tests
    /// and documented for queries).
    pub fn millis_expr(self, column: &str) -> String {
        let c = self.ident(column);
        match self {
            Dialect::Postgres => format!("CAST(ROUND(EXTRACT(EPOCH FROM {c}) * 1000) AS BIGINT)"),
            Dialect::MySql => {
                format!("TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', {c}) DIV 1000")
            }
            Dialect::Sqlite => {
                format!("CAST(ROUND((julianday({c}) - 2440587.5) * 86400000) AS INTEGER)")
            }
        }
    }

    /// A timestamp (milliseconds since the epoch, UTC) as the text the backend parses:
    /// RFC 3339 with `Z` for PostgreSQL and SQLite (stored as is, sorts chronologically),
    /// `YYYY-MM-DD HH:MM:SS.mmm` in UTC for MariaDB/MySQL `DATETIME(3)`.
    pub fn time_text(self, millis: i64) -> String {
        let t = UNIX_EPOCH + Duration::from_millis(u64::try_from(millis).unwrap_or(0));
        let iso = format_utc(t);
        match self {
            Dialect::MySql => iso.trim_end_matches('Z').replacen('T', " ", 1),
            Dialect::Sqlite | Dialect::Postgres => iso,
        }
    }

    /// An exact decimal as the text bound to a numeric column, or `None` when the column cannot
    /// hold it (MariaDB/MySQL: more than 29 integer digits; fractions are rounded to 9 digits).
    pub fn decimal_text(self, d: Decimal) -> Option<String> {
        match self {
            Dialect::MySql => {
                let r = d.round_dp(MYSQL_SCALE);
                let s = r.to_string();
                let int_digits = s
                    .trim_start_matches('-')
                    .split('.')
                    .next()
                    .map_or(0, str::len);
                (int_digits <= MYSQL_INT_DIGITS).then_some(s)
            }
            Dialect::Sqlite | Dialect::Postgres => Some(d.to_string()),
        }
    }

    /// The schema-version table.
    pub fn create_schema_table(self) -> String {
        format!(
            "CREATE TABLE IF NOT EXISTS {} ({} VARCHAR(64) NOT NULL PRIMARY KEY, {} VARCHAR(32) NOT NULL, {} INTEGER NOT NULL){}",
            self.ident(SCHEMA_TABLE),
            self.ident("table_name"),
            self.ident("layout"),
            self.ident("version"),
            self.table_suffix()
        )
    }

    /// Reads layout and version of one table: bind the table name.
    pub fn select_schema_row(self) -> String {
        format!(
            "SELECT {}, {} FROM {} WHERE {} = {}",
            self.ident("layout"),
            self.as_int("version"),
            self.ident(SCHEMA_TABLE),
            self.ident("table_name"),
            self.param(1)
        )
    }

    fn as_int(self, column: &str) -> String {
        match self {
            Dialect::MySql => format!("CAST({} AS SIGNED)", self.ident(column)),
            Dialect::Sqlite | Dialect::Postgres => {
                format!("CAST({} AS BIGINT)", self.ident(column))
            }
        }
    }

    /// Records a table: bind table name, layout, version.
    pub fn insert_schema_row(self) -> String {
        format!(
            "INSERT INTO {} ({}, {}, {}) VALUES ({}, {}, {})",
            self.ident(SCHEMA_TABLE),
            self.ident("table_name"),
            self.ident("layout"),
            self.ident("version"),
            self.param(1),
            self.param(2),
            self.param(3)
        )
    }

    /// The normalised history table: one row per sample.
    pub fn create_history(self, table: &str) -> String {
        format!(
            "CREATE TABLE IF NOT EXISTS {t} ({meter} VARCHAR(64) NOT NULL, {ts} {tst} NOT NULL, \
             {code} VARCHAR(64) NOT NULL, {value} {num} NULL, {text} {long} NULL, \
             {unit} VARCHAR(16) NULL, PRIMARY KEY ({meter}, {code}, {ts})){suffix}",
            t = self.ident(table),
            meter = self.ident("meter"),
            ts = self.ident("ts"),
            tst = self.ts_type(),
            code = self.ident("code"),
            value = self.ident("value"),
            num = self.num_type(),
            text = self.ident("value_text"),
            long = self.long_text_type(),
            unit = self.ident("unit"),
            suffix = self.table_suffix()
        )
    }

    /// The normalised aggregate table: one row per meter, key and bucket.
    pub fn create_aggregate(self, table: &str) -> String {
        format!(
            "CREATE TABLE IF NOT EXISTS {t} ({meter} VARCHAR(64) NOT NULL, {ts} {tst} NOT NULL, \
             {code} VARCHAR(64) NOT NULL, {value} {num} NOT NULL, {unit} VARCHAR(16) NULL, \
             {samples} {count} NOT NULL, PRIMARY KEY ({meter}, {code}, {ts})){suffix}",
            t = self.ident(table),
            meter = self.ident("meter"),
            ts = self.ident("ts"),
            tst = self.ts_type(),
            code = self.ident("code"),
            value = self.ident("value"),
            num = self.num_type(),
            unit = self.ident("unit"),
            samples = self.ident("samples"),
            count = self.count_type(),
            suffix = self.table_suffix()
        )
    }

    /// The predecessor's table (EVNSmartmeterDecrypter `SaveToDB.py`); on MariaDB/MySQL its DDL
    /// verbatim, elsewhere the nearest types.
    pub fn create_compat(self, table: &str) -> String {
        let mut cols = String::new();
        for (i, (name, integer)) in COMPAT_COLUMNS.iter().enumerate() {
            let ty = match (self, *integer, i == COMPAT_COLUMNS.len() - 1) {
                (Dialect::MySql, true, _) => "int(10) unsigned",
                (Dialect::MySql, false, false) => "double unsigned",
                (Dialect::MySql, false, true) => "double",
                (Dialect::Postgres, true, _) => "BIGINT",
                (Dialect::Postgres, false, _) => "DOUBLE PRECISION",
                (Dialect::Sqlite, true, _) => "INTEGER",
                (Dialect::Sqlite, false, _) => "REAL",
            };
            let _ = write!(cols, ", {} {ty} NOT NULL DEFAULT 0", self.ident(name));
        }
        let t = self.ident(table);
        let id = self.ident("id");
        let ts = self.ident("timestamp");
        match self {
            Dialect::MySql => format!(
                "CREATE TABLE IF NOT EXISTS {t} ({id} int(10) unsigned NOT NULL AUTO_INCREMENT, \
                 {ts} int(10) unsigned NOT NULL DEFAULT 0{cols}, PRIMARY KEY ({id},{ts}), \
                 UNIQUE KEY `id_UNIQUE` ({id})) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
            ),
            Dialect::Postgres => format!(
                "CREATE TABLE IF NOT EXISTS {t} ({id} SERIAL NOT NULL, \
                 {ts} BIGINT NOT NULL DEFAULT 0{cols}, PRIMARY KEY ({id}, {ts}), UNIQUE ({id}))"
            ),
            Dialect::Sqlite => format!(
                "CREATE TABLE IF NOT EXISTS {t} ({id} INTEGER PRIMARY KEY AUTOINCREMENT, \
                 {ts} INTEGER NOT NULL DEFAULT 0{cols})"
            ),
        }
    }

    /// A query that fails unless `table` has `columns` (checks a table that already existed).
    pub fn probe(self, table: &str, columns: &[&str]) -> String {
        // SQLite reads a double-quoted name that matches no column as a string literal, which
        // would let the probe pass; backquoted names never fall back.
        let cols: Vec<String> = columns
            .iter()
            .map(|c| match self {
                Dialect::Sqlite => format!("`{}`", c.replace('`', "``")),
                Dialect::MySql | Dialect::Postgres => self.ident(c),
            })
            .collect();
        format!(
            "SELECT {} FROM {} WHERE 1 = 0",
            cols.join(", "),
            self.ident(table)
        )
    }

    /// A multi-row insert into the history table that skips rows already there (same meter,
    /// key and time), so a retried batch is not stored twice. Binds per row: meter, ts, code,
    /// value, value_text, unit.
    pub fn insert_history(self, table: &str, rows: usize) -> String {
        let mut sql = format!(
            "INSERT INTO {} ({}, {}, {}, {}, {}, {}) VALUES ",
            self.ident(table),
            self.ident("meter"),
            self.ident("ts"),
            self.ident("code"),
            self.ident("value"),
            self.ident("value_text"),
            self.ident("unit")
        );
        for r in 0..rows {
            let b = r * 6;
            if r > 0 {
                sql.push_str(", ");
            }
            let _ = write!(
                sql,
                "({}, {}, {}, {}, {}, {})",
                self.param(b + 1),
                self.ts_param(b + 2),
                self.param(b + 3),
                self.num_param(b + 4),
                self.param(b + 5),
                self.param(b + 6)
            );
        }
        match self {
            Dialect::MySql => {
                let m = self.ident("meter");
                let _ = write!(sql, " ON DUPLICATE KEY UPDATE {m} = {m}");
            }
            Dialect::Sqlite | Dialect::Postgres => sql.push_str(" ON CONFLICT DO NOTHING"),
        }
        sql
    }

    /// A multi-row upsert into the aggregate table: a row for the same meter, key and bucket is
    /// replaced (the sink merges with what was there before, see `Bucket::merge_existing`).
    /// Binds per row: meter, ts, code, value, unit, samples.
    pub fn upsert_aggregate(self, table: &str, rows: usize) -> String {
        let mut sql = format!(
            "INSERT INTO {} ({}, {}, {}, {}, {}, {}) VALUES ",
            self.ident(table),
            self.ident("meter"),
            self.ident("ts"),
            self.ident("code"),
            self.ident("value"),
            self.ident("unit"),
            self.ident("samples")
        );
        for r in 0..rows {
            let b = r * 6;
            if r > 0 {
                sql.push_str(", ");
            }
            let _ = write!(
                sql,
                "({}, {}, {}, {}, {}, {})",
                self.param(b + 1),
                self.ts_param(b + 2),
                self.param(b + 3),
                self.num_param(b + 4),
                self.param(b + 5),
                self.param(b + 6)
            );
        }
        let (v, u, s) = (
            self.ident("value"),
            self.ident("unit"),
            self.ident("samples"),
        );
        match self {
            Dialect::MySql => {
                let _ = write!(
                    sql,
                    " ON DUPLICATE KEY UPDATE {v} = VALUES({v}), {u} = VALUES({u}), {s} = VALUES({s})"
                );
            }
            Dialect::Sqlite | Dialect::Postgres => {
                let _ = write!(
                    sql,
                    " ON CONFLICT ({}, {}, {}) DO UPDATE SET {v} = excluded.{v}, {u} = excluded.{u}, {s} = excluded.{s}",
                    self.ident("meter"),
                    self.ident("code"),
                    self.ident("ts")
                );
            }
        }
        sql
    }

    /// Existing aggregate rows of one meter and bucket: bind meter, bucket start. Returns
    /// code, value as text, unit, samples.
    pub fn select_aggregate(self, table: &str) -> String {
        format!(
            "SELECT {}, {}, {}, {} FROM {} WHERE {} = {} AND {} = {}",
            self.ident("code"),
            self.as_text("value"),
            self.ident("unit"),
            self.as_int("samples"),
            self.ident(table),
            self.ident("meter"),
            self.param(1),
            self.ident("ts"),
            self.ts_param(2)
        )
    }

    /// A multi-row insert into a predecessor-layout table. Binds per row: timestamp (seconds),
    /// then the eleven value columns.
    pub fn insert_compat(self, table: &str, rows: usize) -> String {
        let width = COMPAT_COLUMNS.len() + 1;
        let mut sql = format!(
            "INSERT INTO {} ({}",
            self.ident(table),
            self.ident("timestamp")
        );
        for (c, _) in COMPAT_COLUMNS {
            let _ = write!(sql, ", {}", self.ident(c));
        }
        sql.push_str(") VALUES ");
        for r in 0..rows {
            if r > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            for i in 1..=width {
                if i > 1 {
                    sql.push_str(", ");
                }
                sql.push_str(&self.param(r * width + i));
            }
            sql.push(')');
        }
        sql
    }

    /// The first predecessor-layout row in a bucket: bind start and end (seconds, end
    /// exclusive). Returns the timestamp and the eleven values, all as text.
    pub fn select_compat_bucket(self, table: &str) -> String {
        let mut cols = vec![self.as_text("timestamp")];
        cols.extend(COMPAT_COLUMNS.iter().map(|(c, _)| self.as_text(c)));
        format!(
            "SELECT {} FROM {} WHERE {ts} >= {} AND {ts} < {} ORDER BY {} LIMIT 1",
            cols.join(", "),
            self.ident(table),
            self.param(1),
            self.param(2),
            self.ident("id"),
            ts = self.ident("timestamp"),
        )
    }

    /// Removes the predecessor-layout rows of a bucket before its merged row is written: bind
    /// start and end (seconds, end exclusive).
    pub fn delete_compat_bucket(self, table: &str) -> String {
        format!(
            "DELETE FROM {} WHERE {ts} >= {} AND {ts} < {}",
            self.ident(table),
            self.param(1),
            self.param(2),
            ts = self.ident("timestamp"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_backends_by_url_scheme() {
        assert_eq!(
            Dialect::from_url("sqlite://data/readings.db"),
            Some(Dialect::Sqlite)
        );
        assert_eq!(Dialect::from_url("sqlite::memory:"), Some(Dialect::Sqlite));
        assert_eq!(Dialect::from_url("mysql://u:p@h/db"), Some(Dialect::MySql));
        assert_eq!(Dialect::from_url("mariadb://h/db"), Some(Dialect::MySql));
        assert_eq!(
            Dialect::from_url("postgres://h/db"),
            Some(Dialect::Postgres)
        );
        assert_eq!(
            Dialect::from_url("PostgreSQL://h/db"),
            Some(Dialect::Postgres)
        );
        assert_eq!(Dialect::from_url("http://h"), None);
        assert_eq!(Dialect::from_url("data/readings.db"), None);
    }

    #[test]
    fn quotes_identifiers_per_backend() {
        assert_eq!(
            Dialect::MySql.ident("historyDebounced"),
            "`historyDebounced`"
        );
        assert_eq!(
            Dialect::Postgres.ident("historyDebounced"),
            "\"historyDebounced\""
        );
        assert_eq!(Dialect::Sqlite.ident("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn formats_timestamps_for_each_backend() {
        let ms = 1_632_728_835_123;
        assert_eq!(Dialect::Postgres.time_text(ms), "2021-09-27T07:47:15.123Z");
        assert_eq!(Dialect::Sqlite.time_text(ms), "2021-09-27T07:47:15.123Z");
        assert_eq!(Dialect::MySql.time_text(ms), "2021-09-27 07:47:15.123");
    }

    #[test]
    fn binds_decimals_exactly_and_rounds_only_for_mysql_scale() {
        let v = Decimal::new(2337, -1);
        assert_eq!(Dialect::Postgres.decimal_text(v).as_deref(), Some("233.7"));
        assert_eq!(Dialect::Sqlite.decimal_text(v).as_deref(), Some("233.7"));
        assert_eq!(Dialect::MySql.decimal_text(v).as_deref(), Some("233.7"));
        let tiny = Decimal::new(123_456_789_012, -12);
        assert_eq!(
            Dialect::MySql.decimal_text(tiny).as_deref(),
            Some("0.123456789")
        );
        assert_eq!(
            Dialect::Postgres.decimal_text(tiny).as_deref(),
            Some("0.123456789012")
        );
        let huge = Decimal::new(1, 30);
        assert_eq!(Dialect::MySql.decimal_text(huge), None);
        assert!(Dialect::Postgres.decimal_text(huge).is_some());
        let fits = Decimal::new(-1, 28);
        assert!(Dialect::MySql.decimal_text(fits).is_some());
    }

    #[test]
    fn writes_the_normalised_history_table() {
        assert_eq!(
            Dialect::Postgres.create_history("history"),
            "CREATE TABLE IF NOT EXISTS \"history\" (\"meter\" VARCHAR(64) NOT NULL, \
             \"ts\" TIMESTAMPTZ(3) NOT NULL, \"code\" VARCHAR(64) NOT NULL, \"value\" NUMERIC NULL, \
             \"value_text\" TEXT NULL, \"unit\" VARCHAR(16) NULL, \
             PRIMARY KEY (\"meter\", \"code\", \"ts\"))"
        );
        assert_eq!(
            Dialect::MySql.create_history("h"),
            "CREATE TABLE IF NOT EXISTS `h` (`meter` VARCHAR(64) NOT NULL, `ts` DATETIME(3) NOT NULL, \
             `code` VARCHAR(64) NOT NULL, `value` DECIMAL(38,9) NULL, `value_text` VARCHAR(255) NULL, \
             `unit` VARCHAR(16) NULL, PRIMARY KEY (`meter`, `code`, `ts`)) \
             ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
        );
        assert!(Dialect::Sqlite.create_aggregate("agg").contains(
            "\"value\" TEXT NOT NULL, \"unit\" VARCHAR(16) NULL, \"samples\" INTEGER NOT NULL"
        ));
    }

    #[test]
    fn writes_the_predecessor_table_verbatim_for_mysql() {
        assert_eq!(
            Dialect::MySql.create_compat("history"),
            "CREATE TABLE IF NOT EXISTS `history` (`id` int(10) unsigned NOT NULL AUTO_INCREMENT, \
             `timestamp` int(10) unsigned NOT NULL DEFAULT 0, \
             `WIn` int(10) unsigned NOT NULL DEFAULT 0, `WOut` int(10) unsigned NOT NULL DEFAULT 0, \
             `PIn` double unsigned NOT NULL DEFAULT 0, `POut` double unsigned NOT NULL DEFAULT 0, \
             `U1` double unsigned NOT NULL DEFAULT 0, `U2` double unsigned NOT NULL DEFAULT 0, \
             `U3` double unsigned NOT NULL DEFAULT 0, `I1` double unsigned NOT NULL DEFAULT 0, \
             `I2` double unsigned NOT NULL DEFAULT 0, `I3` double unsigned NOT NULL DEFAULT 0, \
             `PF` double NOT NULL DEFAULT 0, PRIMARY KEY (`id`,`timestamp`), \
             UNIQUE KEY `id_UNIQUE` (`id`)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
        );
        let pg = Dialect::Postgres.create_compat("historyDebounced");
        assert!(pg.starts_with(
            "CREATE TABLE IF NOT EXISTS \"historyDebounced\" (\"id\" SERIAL NOT NULL"
        ));
        assert!(pg.contains("\"PF\" DOUBLE PRECISION NOT NULL DEFAULT 0"));
        let lite = Dialect::Sqlite.create_compat("history");
        assert!(lite.contains("\"id\" INTEGER PRIMARY KEY AUTOINCREMENT"));
        assert!(lite.contains("\"WIn\" INTEGER NOT NULL DEFAULT 0"));
    }

    #[test]
    fn probes_sqlite_columns_without_the_string_literal_fallback() {
        assert_eq!(
            Dialect::Sqlite.probe("history", &["meter", "ts"]),
            "SELECT `meter`, `ts` FROM \"history\" WHERE 1 = 0"
        );
        assert_eq!(
            Dialect::Postgres.probe("h", &["id"]),
            "SELECT \"id\" FROM \"h\" WHERE 1 = 0"
        );
    }

    #[test]
    fn numbers_postgres_placeholders_across_rows() {
        assert_eq!(
            Dialect::Postgres.insert_history("history", 2),
            "INSERT INTO \"history\" (\"meter\", \"ts\", \"code\", \"value\", \"value_text\", \"unit\") VALUES \
             ($1, CAST($2 AS TIMESTAMPTZ), $3, CAST($4 AS NUMERIC), $5, $6), \
             ($7, CAST($8 AS TIMESTAMPTZ), $9, CAST($10 AS NUMERIC), $11, $12) ON CONFLICT DO NOTHING"
        );
        assert_eq!(
            Dialect::MySql.insert_history("h", 1),
            "INSERT INTO `h` (`meter`, `ts`, `code`, `value`, `value_text`, `unit`) VALUES \
             (?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE `meter` = `meter`"
        );
    }

    #[test]
    fn upserts_aggregates_by_meter_key_and_bucket() {
        assert_eq!(
            Dialect::Sqlite.upsert_aggregate("a", 1),
            "INSERT INTO \"a\" (\"meter\", \"ts\", \"code\", \"value\", \"unit\", \"samples\") VALUES \
             (?, ?, ?, ?, ?, ?) ON CONFLICT (\"meter\", \"code\", \"ts\") DO UPDATE SET \
             \"value\" = excluded.\"value\", \"unit\" = excluded.\"unit\", \"samples\" = excluded.\"samples\""
        );
        assert!(Dialect::MySql
            .upsert_aggregate("a", 1)
            .ends_with("ON DUPLICATE KEY UPDATE `value` = VALUES(`value`), `unit` = VALUES(`unit`), `samples` = VALUES(`samples`)"));
    }

    #[test]
    fn inserts_predecessor_rows_with_twelve_binds_each() {
        let sql = Dialect::Postgres.insert_compat("history", 2);
        assert!(sql.starts_with(
            "INSERT INTO \"history\" (\"timestamp\", \"WIn\", \"WOut\", \"PIn\", \"POut\", \"U1\", \"U2\", \"U3\", \"I1\", \"I2\", \"I3\", \"PF\") VALUES ($1, $2,"
        ));
        assert!(sql.ends_with("$23, $24)"));
        assert_eq!(
            Dialect::MySql.delete_compat_bucket("d"),
            "DELETE FROM `d` WHERE `timestamp` >= ? AND `timestamp` < ?"
        );
    }
}

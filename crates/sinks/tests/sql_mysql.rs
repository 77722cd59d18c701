//! The SQL sink against a real MariaDB/MySQL server (`SMART_METER_TEST_MYSQL_URL`, default
//! `mysql://root@127.0.0.1:3306/test`). Each test creates its own database and drops it.
#![cfg(feature = "sql")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sql_common;

use smart_meter_sinks::sql::dialect::Dialect;
use smart_meter_sinks::sql::Layout;
use sql_common::*;

const ENV: &str = "SMART_METER_TEST_MYSQL_URL";
const DEFAULT: &str = "mysql://root@127.0.0.1:3306/test";

async fn db(test: &str) -> TestDb {
    TestDb::create(ENV, DEFAULT, Dialect::MySql, test).await
}

#[tokio::test]
async fn stores_history_and_first_sample_per_bucket_in_mariadb() {
    let db = db("history").await;
    stores_history_and_first_sample_per_bucket(&db.url, Dialect::MySql).await;
}

#[tokio::test]
async fn aggregates_in_every_mode_in_mariadb() {
    let db = db("modes").await;
    aggregates_in_every_mode(&db.url, Dialect::MySql).await;
}

#[tokio::test]
async fn a_restart_within_a_bucket_merges_in_mariadb() {
    let db = db("restart").await;
    restart_within_a_bucket_merges(&db.url, Dialect::MySql).await;
}

#[tokio::test]
async fn writes_the_predecessor_tables_in_mariadb() {
    let db = db("compat").await;
    writes_the_predecessor_tables(&db.url, Dialect::MySql).await;
}

#[tokio::test]
async fn refuses_a_table_of_another_layout_in_mariadb() {
    let db = db("layout").await;
    refuses_a_table_of_another_layout(&db.url).await;
}

#[tokio::test]
async fn survives_a_mariadb_outage() {
    let db = db("outage").await;
    survives_a_server_outage(&db, Dialect::MySql).await;
}

#[tokio::test]
async fn refuses_a_foreign_table_in_mariadb() {
    let db = db("foreign").await;
    refuses_a_foreign_table(&db.url, Dialect::MySql).await;
}

/// The table `SaveToDB.py` created is adopted as it is: new rows are appended after the old.
#[tokio::test]
async fn adopts_the_predecessors_existing_table_in_mariadb() {
    use smart_meter_sinks::sql::{Config, Layout};
    let db = db("adopt").await;
    let mut c = connect(&db.url).await;
    for table in ["history", "historyDebounced"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE TABLE `{table}` (\
             `id` int(10) unsigned NOT NULL AUTO_INCREMENT,\
             `timestamp` int(10) unsigned NOT NULL DEFAULT 0,\
             `WIn` int(10) unsigned NOT NULL DEFAULT 0, `WOut` int(10) unsigned NOT NULL DEFAULT 0,\
             `PIn` double unsigned NOT NULL DEFAULT 0, `POut` double unsigned NOT NULL DEFAULT 0,\
             `U1` double unsigned NOT NULL DEFAULT 0, `U2` double unsigned NOT NULL DEFAULT 0,\
             `U3` double unsigned NOT NULL DEFAULT 0, `I1` double unsigned NOT NULL DEFAULT 0,\
             `I2` double unsigned NOT NULL DEFAULT 0, `I3` double unsigned NOT NULL DEFAULT 0,\
             `PF` double NOT NULL DEFAULT 0,\
             PRIMARY KEY (`id`,`timestamp`), UNIQUE KEY `id_UNIQUE` (`id`)\
             ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
        )))
        .execute(&mut c)
        .await
        .unwrap();
    }
    sqlx::query(
        "INSERT INTO history (`timestamp`, WIn, U1, PF) VALUES (1632728835, 12937, 233.7, 1.0)",
    )
    .execute(&mut c)
    .await
    .unwrap();
    let config = Config {
        layout: Layout::EvnDecrypter,
        ..config(&db.url)
    };
    store(config, vec![evn_reading("evn", T0, 13_000, 2310, 950)]).await;
    let rows = compat_rows(&db.url, Dialect::MySql, "history").await;
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[0].0, rows[0].1[0].as_str()), (1_632_728_835, "12937"));
    assert_eq!((rows[1].0, rows[1].1[0].as_str()), (T0 / 1000, "13000"));
    assert_eq!(
        compat_rows(&db.url, Dialect::MySql, "historyDebounced")
            .await
            .len(),
        1
    );
}

/// A value the table cannot hold (a negative power in `double unsigned`) is rejected by the
/// server: that reading is dropped and counted, the others of its batch are stored.
#[tokio::test]
async fn drops_only_the_rejected_reading_of_a_batch_in_mariadb() {
    use smart_meter_core::Decimal;
    use smart_meter_sinks::sql::{Config, Layout};
    use std::sync::atomic::Ordering;
    let db = db("reject").await;
    let config = Config {
        layout: Layout::EvnDecrypter,
        ..config(&db.url)
    };
    let mut bad = evn_reading("evn", T0 + 2_000, 13_001, 2310, 950);
    bad.samples[2].value = smart_meter_core::Value::Number(Decimal::new(-5, 0));
    let readings = vec![
        evn_reading("evn", T0, 13_000, 2310, 950),
        bad,
        evn_reading("evn", T0 + 4_000, 13_002, 2310, 950),
    ];
    let stats = store(config, readings).await;
    assert_eq!(stats.delivered.load(Ordering::Relaxed), 2);
    assert_eq!(stats.dropped.load(Ordering::Relaxed), 1);
    let rows = compat_rows(&db.url, Dialect::MySql, "history").await;
    let energies: Vec<&str> = rows.iter().map(|r| r.1[0].as_str()).collect();
    assert_eq!(energies, ["13000", "13002"]);
    assert!(stats
        .last_error
        .lock()
        .unwrap()
        .as_deref()
        .unwrap_or("")
        .contains("PIn"));
}

#[tokio::test]
async fn spooled_readings_are_stored_once_at_the_next_start_in_mariadb() {
    let db = db("spool").await;
    let reference = self::db("spoolref").await;
    let down = closed_port_url(Dialect::MySql).await;
    spooled_readings_are_stored_once_at_the_next_start(
        &down,
        &db.url,
        &reference.url,
        Dialect::MySql,
        Layout::Normalized,
        || {},
    )
    .await;
}

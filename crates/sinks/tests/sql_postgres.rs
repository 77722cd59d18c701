//! The SQL sink against a real PostgreSQL server (`SMART_METER_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`). Each test creates its own database and drops it.
#![cfg(feature = "sql")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sql_common;

use smart_meter_sinks::sql::dialect::Dialect;
use smart_meter_sinks::sql::Layout;
use sql_common::*;

const ENV: &str = "SMART_METER_TEST_POSTGRES_URL";
const DEFAULT: &str = "postgres://postgres@127.0.0.1:5432/postgres";

async fn db(test: &str) -> TestDb {
    TestDb::create(ENV, DEFAULT, Dialect::Postgres, test).await
}

#[tokio::test]
async fn stores_history_and_first_sample_per_bucket_in_postgres() {
    let db = db("history").await;
    stores_history_and_first_sample_per_bucket(&db.url, Dialect::Postgres).await;
}

#[tokio::test]
async fn aggregates_in_every_mode_in_postgres() {
    let db = db("modes").await;
    aggregates_in_every_mode(&db.url, Dialect::Postgres).await;
}

#[tokio::test]
async fn a_restart_within_a_bucket_merges_in_postgres() {
    let db = db("restart").await;
    restart_within_a_bucket_merges(&db.url, Dialect::Postgres).await;
}

#[tokio::test]
async fn writes_the_predecessor_tables_in_postgres() {
    let db = db("compat").await;
    writes_the_predecessor_tables(&db.url, Dialect::Postgres).await;
}

#[tokio::test]
async fn refuses_a_table_of_another_layout_in_postgres() {
    let db = db("layout").await;
    refuses_a_table_of_another_layout(&db.url).await;
}

#[tokio::test]
async fn survives_a_postgres_outage() {
    let db = db("outage").await;
    survives_a_server_outage(&db, Dialect::Postgres).await;
}

#[tokio::test]
async fn refuses_a_foreign_table_in_postgres() {
    let db = db("foreign").await;
    refuses_a_foreign_table(&db.url, Dialect::Postgres).await;
}

#[tokio::test]
async fn spooled_readings_are_stored_once_at_the_next_start_in_postgres() {
    let db = db("spool").await;
    let reference = self::db("spoolref").await;
    let down = closed_port_url(Dialect::Postgres).await;
    spooled_readings_are_stored_once_at_the_next_start(
        &down,
        &db.url,
        &reference.url,
        Dialect::Postgres,
        Layout::Normalized,
        || {},
    )
    .await;
}

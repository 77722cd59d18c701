//! The SQL sink against an embedded SQLite file.
#![cfg(feature = "sql")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sql_common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use smart_meter_core::{Decimal, Unit};
use smart_meter_sinks::sql::dialect::Dialect;
use smart_meter_sinks::sql::Config;
use sql_common::*;

fn url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}/data/readings.db", dir.path().display())
}

#[tokio::test]
async fn stores_history_and_first_sample_per_bucket_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    stores_history_and_first_sample_per_bucket(&url(&dir), Dialect::Sqlite).await;
    assert!(
        dir.path().join("data/readings.db").is_file(),
        "folder and file are created"
    );
}

#[tokio::test]
async fn aggregates_in_every_mode_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    aggregates_in_every_mode(&url(&dir), Dialect::Sqlite).await;
}

#[tokio::test]
async fn a_restart_within_a_bucket_merges_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    restart_within_a_bucket_merges(&url(&dir), Dialect::Sqlite).await;
}

#[tokio::test]
async fn writes_the_predecessor_tables_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    writes_the_predecessor_tables(&url(&dir), Dialect::Sqlite).await;
}

#[tokio::test]
async fn refuses_a_table_of_another_layout_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    refuses_a_table_of_another_layout(&url(&dir)).await;
}

#[tokio::test]
async fn stores_timestamps_as_sortable_utc_text_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = url(&dir);
    store(
        config(&url),
        vec![reading(
            "m",
            T0 + 7,
            &[(1, 7, Decimal::new(5, 0), Some(Unit::W))],
        )],
    )
    .await;
    let mut c = connect(&url).await;
    let (ts, value): (String, String) = sqlx::query_as("SELECT ts, value FROM history")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(
        (ts.as_str(), value.as_str()),
        ("2026-11-21T22:00:00.007Z", "5")
    );
}

/// The database path cannot be created at first (a file is in the way); readings queue, the
/// sink retries, and everything is stored once the path appears.
#[tokio::test]
async fn queues_readings_until_the_database_path_appears() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("blocked");
    std::fs::write(&blocker, b"not a folder").unwrap();
    let url = format!("sqlite://{}/db/readings.db", blocker.display());
    let run = start(config(&url));
    for i in 0..20i64 {
        run.publisher.publish(reading(
            "m",
            T0 + i * 1_000,
            &[(1, 8, Decimal::new(i as i128, 0), Some(Unit::WH))],
        ));
    }
    let stats = run.stats.clone();
    wait_for("retries", || stats.retries.load(Ordering::Relaxed) >= 3).await;
    assert_eq!(stats.delivered.load(Ordering::Relaxed), 0);
    assert_eq!(stats.queued.load(Ordering::Relaxed), 20);
    assert!(!stats.connected.load(Ordering::Relaxed));

    std::fs::remove_file(&blocker).unwrap();
    wait_for("delivery", || stats.delivered.load(Ordering::Relaxed) == 20).await;
    let (r, stats) = run.finish().await;
    r.unwrap();
    assert_eq!(stats.dropped.load(Ordering::Relaxed), 0);
    assert_eq!(history(&url, Dialect::Sqlite, "history").await.len(), 20);
    assert_eq!(
        aggregates(&url, Dialect::Sqlite, "history_aggregate")
            .await
            .len(),
        1
    );
}

/// Beyond `queue_size` the oldest readings are dropped and counted; the rest is stored.
#[tokio::test]
async fn drops_and_counts_the_oldest_readings_beyond_the_queue_bound() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("blocked");
    std::fs::write(&blocker, b"not a folder").unwrap();
    let url = format!("sqlite://{}/db/readings.db", blocker.display());
    let run = start(Config {
        queue_size: 5,
        batch_size: 2,
        ..config(&url)
    });
    for i in 0..30i64 {
        run.publisher.publish(reading(
            "m",
            T0 + i * 1_000,
            &[(1, 8, Decimal::new(i as i128, 0), Some(Unit::WH))],
        ));
    }
    let stats = run.stats.clone();
    wait_for("all readings seen", || {
        stats.dropped.load(Ordering::Relaxed) + stats.queued.load(Ordering::Relaxed) as u64 >= 30
            && stats.retries.load(Ordering::Relaxed) >= 2
    })
    .await;
    std::fs::remove_file(&blocker).unwrap();
    let (r, stats) = run.finish().await;
    r.unwrap();
    let delivered = stats.delivered.load(Ordering::Relaxed);
    let dropped = stats.dropped.load(Ordering::Relaxed);
    assert_eq!(delivered + dropped, 30);
    // The queue holds 5 and the writer at most one batch of 2 in flight.
    assert!((5..=7).contains(&delivered), "delivered {delivered}");
    let rows = history(&url, Dialect::Sqlite, "history").await;
    let newest = rows.last().unwrap().3.unwrap();
    assert_eq!(newest, Decimal::from(29i64), "the newest readings are kept");
}

/// After shutdown an unreachable database is retried for `drain_timeout`, then the rest is
/// dropped and counted instead of hanging.
#[tokio::test]
async fn gives_up_after_the_drain_timeout_at_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("blocked");
    std::fs::write(&blocker, b"not a folder").unwrap();
    let url = format!("sqlite://{}/db/readings.db", blocker.display());
    let run = start(Config {
        drain_timeout: Duration::from_millis(300),
        ..config(&url)
    });
    for i in 0..3i64 {
        run.publisher
            .publish(reading("m", T0 + i, &[(1, 8, Decimal::from(i), None)]));
    }
    let (r, stats) = run.finish().await;
    r.unwrap();
    assert_eq!(stats.delivered.load(Ordering::Relaxed), 0);
    assert_eq!(
        stats.dropped.load(Ordering::Relaxed),
        4,
        "3 readings and the open bucket"
    );
    assert_eq!(stats.queued.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn refuses_a_foreign_table_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = url(&dir);
    std::fs::create_dir(dir.path().join("data")).unwrap();
    refuses_a_foreign_table(&format!("{url}?mode=rwc"), Dialect::Sqlite).await;
}

#[tokio::test]
async fn creates_the_schema_at_start_before_any_reading() {
    let dir = tempfile::tempdir().unwrap();
    let url = url(&dir);
    let run = start(config(&url));
    let stats = run.stats.clone();
    wait_for("the connection", || stats.connected.load(Ordering::Relaxed)).await;
    let (r, stats) = run.finish().await;
    r.unwrap();
    assert_eq!(stats.delivered.load(Ordering::Relaxed), 0);
    assert_eq!(schema_rows(&url, Dialect::Sqlite).await.len(), 2);
    assert!(history(&url, Dialect::Sqlite, "history").await.is_empty());
}

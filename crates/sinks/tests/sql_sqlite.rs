//! The SQL sink against an embedded SQLite file.
#![cfg(feature = "sql")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sql_common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use smart_meter_core::{Decimal, Reading, Unit};
use smart_meter_sinks::queue::{Queue, SpoolConfig};
use smart_meter_sinks::sql::db::Item;
use smart_meter_sinks::sql::dialect::Dialect;
use smart_meter_sinks::sql::{encode, record, Config, Layout};
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
    // The queue holds 5 items, batches in flight included (while the database is unreachable
    // the writer gives its batch back). At shutdown the open bucket joins them and pushes out
    // one more reading, unless the writer stored a batch first.
    assert!((4..=5).contains(&delivered), "delivered {delivered}");
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

/// A path the database cannot be created at until the returned file is removed.
fn blocked_url(dir: &tempfile::TempDir) -> (String, std::path::PathBuf) {
    let blocker = dir.path().join("blocked");
    std::fs::write(&blocker, b"not a folder").unwrap();
    (
        format!("sqlite://{}/db/readings.db", blocker.display()),
        blocker,
    )
}

/// The database path is unusable for a whole run with `spool_dir`; the next run stores every
/// spooled reading once.
#[tokio::test]
async fn spooled_readings_are_stored_once_at_the_next_start_in_sqlite() {
    for layout in [Layout::Normalized, Layout::EvnDecrypter] {
        let dir = tempfile::tempdir().unwrap();
        let reference = tempfile::tempdir().unwrap();
        let (url, blocker) = blocked_url(&dir);
        spooled_readings_are_stored_once_at_the_next_start(
            &url,
            &url,
            &self::url(&reference),
            Dialect::Sqlite,
            layout,
            || std::fs::remove_file(&blocker).unwrap(),
        )
        .await;
    }
}

/// A spooled record that does not decode is skipped and counted; the others are stored.
#[tokio::test]
async fn a_damaged_spooled_record_is_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let spool = tempfile::tempdir().unwrap();
    let url = url(&dir);
    let r1 = reading("m", T0 + 1, &[(1, 8, Decimal::new(11, -1), Some(Unit::WH))]);
    let r2 = reading("m", T0 + 2, &[(1, 8, Decimal::new(22, -1), Some(Unit::WH))]);
    {
        let mut q = Queue::open(
            10,
            &SpoolConfig {
                dir: spool.path().to_path_buf(),
                name: "db".into(),
                max_bytes: 1 << 20,
            },
        )
        .unwrap();
        let item = |r: &Reading| record::encode(&Item::History(encode::history_rows(r)));
        q.push(item(&r1));
        // Intact as a spool record (its checksum is right), but not an item of this format.
        q.push(vec![record::FORMAT, 9, 1, 2, 3]);
        q.push(b"written by something else".to_vec());
        q.push(item(&r2));
        q.close().unwrap();
    }
    let stats = store(
        Config {
            spool_dir: Some(spool.path().to_path_buf()),
            ..config(&url)
        },
        Vec::new(),
    )
    .await;
    assert_eq!(stats.delivered.load(Ordering::Relaxed), 2);
    assert_eq!(stats.dropped.load(Ordering::Relaxed), 2);
    assert_eq!(stats.queued.load(Ordering::Relaxed), 0);
    let values: Vec<Option<Decimal>> = history(&url, Dialect::Sqlite, "history")
        .await
        .into_iter()
        .map(|r| r.3)
        .collect();
    assert_eq!(
        values,
        [Some(Decimal::new(11, -1)), Some(Decimal::new(22, -1))]
    );
}

//! A capture replayed at `speed = "max"` into a sink that is slower than the decoder. A file,
//! unlike a meter, can wait: the replay must not run so far ahead of the slowest sink that the
//! bus drops readings, whatever the bus capacity.

use std::sync::atomic::Ordering;

use smart_meter_tests::dsmr::{capture, indices};
use smart_meter_tests::gateway::Gateway;
use smart_meter_tests::{read_jsonl, replay_to_jsonl};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_max_speed_replay_loses_no_reading_to_a_slower_sink() {
    const N: u64 = 5_000;
    let dir = tempfile::tempdir().unwrap();
    let out = replay_to_jsonl(dir.path(), 16, "p1", "dsmr", "", &capture(0..N));
    let gw = Gateway::start(dir.path(), "t").await;
    let sink = gw.sink("out");
    gw.join().await.expect("the replay runs to the end");
    assert_eq!(
        sink.lagged.load(Ordering::Relaxed),
        0,
        "no reading lost on the bus"
    );
    assert_eq!(indices(&read_jsonl(&out)), (0..N).collect::<Vec<_>>());
}

//! A sink slower than the sources: a `jsonl` sink writing into a FIFO whose reader stalls. The
//! bus never makes the source wait (a meter cannot be paused), so the slow sink loses readings,
//! and that loss must be counted exactly (delivered + lagged = published) while the other sink
//! gets every reading and the gateway stays up.

use std::io::{BufRead, BufReader};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::mpsc;

use smart_meter_tests::dsmr::{index_of, indices, telegram};
use smart_meter_tests::gateway::Gateway;
use smart_meter_tests::tcp::TcpMeter;
use smart_meter_tests::{read_jsonl, write_settings};

const N: u64 = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_sink_loses_only_its_own_readings_and_counts_every_one() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("slow.fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let fast = dir.path().join("fast.jsonl");
    let mut meter = TcpMeter::bind().await;
    write_settings(
        dir.path(),
        &format!(
            r#"[t]
shutdown_grace = "60s"
[t.bus]
capacity = 16
[t.sources.p1]
protocol = "dsmr"
tcp = "{}"
[t.sinks.fast]
type = "jsonl"
path = "{}"
[t.sinks.slow]
type = "jsonl"
path = "{}"
"#,
            meter.addr(),
            fast.display(),
            fifo.display()
        ),
    );

    // The slow reader opens the FIFO at once but reads nothing until told to.
    let (go, wait_go) = mpsc::channel::<()>();
    let reader = std::thread::spawn({
        let fifo = fifo.clone();
        move || {
            let f = std::fs::File::open(&fifo).unwrap();
            wait_go.recv().unwrap();
            BufReader::new(f)
                .lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(&l.unwrap()).unwrap())
                .collect::<Vec<_>>()
        }
    });

    let gw = Gateway::start(dir.path(), "t").await;
    meter.accept().await;
    // Paced by the fast sink, so only the stalled one can fall behind.
    for i in 0..N {
        meter.send(&telegram(i)).await;
        gw.wait_delivered("fast", i + 1).await;
    }
    let slow = gw.sink("slow");
    let fast_stats = gw.sink("fast");
    // Blocked in a write, the stalled sink has not even seen most of them yet.
    assert!(slow.delivered.load(Ordering::Relaxed) < N);
    assert!(gw.is_running());

    go.send(()).unwrap();
    gw.stop().await.expect("clean shutdown");
    let slow_lines = tokio::task::spawn_blocking(move || reader.join().unwrap())
        .await
        .unwrap();

    assert_eq!(indices(&read_jsonl(&fast)), (0..N).collect::<Vec<_>>());
    assert_eq!(fast_stats.lagged.load(Ordering::Relaxed), 0);
    let delivered = slow.delivered.load(Ordering::Relaxed);
    let lagged = slow.lagged.load(Ordering::Relaxed);
    assert!(lagged > 0, "the stalled sink fell behind the bus");
    assert_eq!(
        delivered + lagged,
        N,
        "every reading is delivered or counted as lost"
    );
    assert_eq!(slow_lines.len() as u64, delivered);
    let got: Vec<u64> = slow_lines.iter().map(index_of).collect();
    assert!(
        got.windows(2).all(|w| w[0] < w[1]),
        "what arrives is in order, without repeats"
    );
}

//! A USB serial adapter unplugged in the middle of a telegram and plugged in again, and one that
//! is missing when the gateway starts. The serial port is a socat pty pair; the gateway is the
//! real one, configured from a settings file, with a `dsmr` source and a `jsonl` sink.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::Ordering;

use smart_meter_core::stats::SourceState;
use smart_meter_core::Stage;
use smart_meter_tests::dsmr::{indices, telegram};
use smart_meter_tests::gateway::Gateway;
use smart_meter_tests::pty::PtyPair;
use smart_meter_tests::{read_jsonl, wait, write_settings};

fn config(dir: &Path, port: &Path) {
    write_settings(
        dir,
        &format!(
            r#"[t]
shutdown_grace = "20s"
[t.sources.p1]
protocol = "dsmr"
serial = {{ port = "{}" }}
[t.sinks.out]
type = "jsonl"
path = "{}"
"#,
            port.display(),
            dir.join("out.jsonl").display()
        ),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unplugging_mid_telegram_loses_only_the_cut_telegram_and_reading_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let mut pty = PtyPair::new(dir.path());
    config(dir.path(), &pty.port);
    let gw = Gateway::start(dir.path(), "t").await;
    gw.wait_connected("p1", 1).await;
    let src = gw.source("p1");

    let mut meter = pty.open_meter();
    for i in 0..10 {
        meter.write_all(&telegram(i)).unwrap();
    }
    gw.wait_delivered("out", 10).await;

    // Half of telegram 10 reaches the gateway, then the adapter is pulled.
    let cut = telegram(10);
    let half = &cut[..cut.len() / 2];
    let before = src.bytes.load(Ordering::Relaxed);
    meter.write_all(half).unwrap();
    wait::until("the first half reaches the gateway", wait::LIMIT, || {
        src.bytes.load(Ordering::Relaxed) >= before + half.len() as u64
    })
    .await;
    drop(meter);
    pty.unplug();
    wait::until("the gateway notices the unplug", wait::LIMIT, || {
        src.state() != SourceState::Running
    })
    .await;
    assert!(gw.is_running());

    // Plugged in again: the gateway reopens the same device path by itself.
    pty.plug();
    gw.wait_connected("p1", 2).await;
    let mut meter = pty.open_meter();
    for i in 11..20 {
        meter.write_all(&telegram(i)).unwrap();
    }
    gw.wait_delivered("out", 19).await;
    assert!(gw.is_running(), "the gateway stays up through the unplug");
    assert_eq!(src.state(), SourceState::Running);
    let out = gw.sink("out");
    gw.stop().await.expect("clean shutdown");

    let got = indices(&read_jsonl(&dir.path().join("out.jsonl")));
    let want: Vec<u64> = (0..10).chain(11..20).collect();
    assert_eq!(
        got, want,
        "every complete telegram is a reading, once, in order"
    );
    assert_eq!(src.readings.load(Ordering::Relaxed), 19);
    assert_eq!(out.delivered.load(Ordering::Relaxed), 19);
    assert_eq!(src.connects.load(Ordering::Relaxed), 2);
    // The telegram cut by the unplug is the only loss, and it is counted as a framing error.
    assert_eq!(
        src.errors_at(Stage::Framing),
        1,
        "the cut telegram is counted"
    );
    assert_eq!(src.errors_at(Stage::Checksum), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_missing_at_start_is_opened_once_it_is_plugged_in() {
    let dir = tempfile::tempdir().unwrap();
    let mut pty = PtyPair::new(dir.path());
    pty.unplug();
    config(dir.path(), &pty.port);
    let gw = Gateway::start(dir.path(), "t").await;
    let src = gw.source("p1");
    wait::until("the gateway backs off", wait::LIMIT, || {
        src.state() == SourceState::Backoff
    })
    .await;
    assert!(src.last_error.lock().unwrap().is_some());

    pty.plug();
    gw.wait_connected("p1", 1).await;
    let mut meter = pty.open_meter();
    for i in 0..5 {
        meter.write_all(&telegram(i)).unwrap();
    }
    gw.wait_delivered("out", 5).await;
    gw.stop().await.expect("clean shutdown");
    let got = indices(&read_jsonl(&dir.path().join("out.jsonl")));
    assert_eq!(got, (0..5).collect::<Vec<_>>());
}

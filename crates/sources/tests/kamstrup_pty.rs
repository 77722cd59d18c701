//! The `kamstrup` source end to end over a pseudo-terminal: the gateway's serial transport opens
//! the pty's device path (1200 8N2) and polls; a simulated Kamstrup meter on the master side
//! decodes the real requests and answers with encoded responses, sometimes slowly, garbled,
//! behind an echoing optical head, or not at all.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use proto_kmp::{Direction, Framer, Number, Register, Request, Response, Unit};
use smart_meter_core::stats::{SourceState, SourceStats};
use smart_meter_core::{Bus, MeterId, Reading, Stage, Subscription};
use smart_meter_sources::kamstrup;
use smart_meter_sources::transport::serial::{self, SerialConfig};
use smart_meter_sources::transport::Sink;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;
use tokio_serial::{SerialPort, SerialStream};
use tokio_util::sync::CancellationToken;

/// What the simulated meter does with the n-th request (0-based).
#[derive(Clone, Copy, Debug)]
enum Action {
    /// Answer after `delay`; `echo`: the optical head returns the request first; `garble`:
    /// one byte of the answer is flipped on the way.
    Answer {
        delay: Duration,
        echo: bool,
        garble: bool,
    },
    /// Say nothing.
    Silent,
}

const PROMPT: Action = Action::Answer {
    delay: Duration::ZERO,
    echo: false,
    garble: false,
};

/// The registers of a Multical, with the values of the Tasmota #38 capture.
fn multical() -> Vec<Register> {
    let r = |id, unit, mantissa, exponent| {
        Register::new(id, unit, Number { mantissa, exponent }, 4).unwrap()
    };
    vec![
        r(60, Unit::MWh, 55006, -3),
        r(80, Unit::KW, 0, -1),
        r(86, Unit::DegC, 5365, -2),
        r(87, Unit::DegC, 4579, -2),
        r(89, Unit::K, 786, -2),
        r(74, Unit::LPerH, 0, 0),
        r(68, Unit::M3, 187556, -2),
        r(1004, Unit::H, 61234, 0),
    ]
}

/// The meter side of the pty: decodes requests, answers per `script`, logs what was asked.
async fn simulate(
    mut port: SerialStream,
    script: impl Fn(usize) -> Action + Send + 'static,
    asked: Arc<Mutex<Vec<Vec<u16>>>>,
) {
    let known = multical();
    let mut framer = Framer::new(Direction::ToMeter);
    let mut buf = [0u8; 256];
    loop {
        let n = match port.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        framer.push(&buf[..n]);
        while let Some(frame) = framer.next_frame() {
            let Ok(frame) = frame else { continue };
            let Ok(request) = Request::parse(&frame) else {
                continue;
            };
            let index = {
                let mut log = asked.lock().unwrap();
                log.push(request.registers.clone());
                log.len() - 1
            };
            let Action::Answer {
                delay,
                echo,
                garble,
            } = script(index)
            else {
                continue;
            };
            if echo && port.write_all(&request.emit()).await.is_err() {
                return;
            }
            tokio::time::sleep(delay).await;
            let mut answer = Response {
                address: request.address,
                registers: request
                    .registers
                    .iter()
                    .filter_map(|id| known.iter().find(|r| r.id == *id).cloned())
                    .collect(),
            }
            .emit();
            if garble {
                answer[8] ^= 0x24;
            }
            if port.write_all(&answer).await.is_err() {
                return;
            }
        }
    }
}

struct Harness {
    readings: Subscription,
    stats: Arc<SourceStats>,
    asked: Arc<Mutex<Vec<Vec<u16>>>>,
    cancel: CancellationToken,
    source: JoinHandle<()>,
    meter: JoinHandle<()>,
    // Held so the pty stays open while the gateway (re)opens its device path.
    _slave: SerialStream,
}

/// Starts a meter simulator and the gateway's serial `kamstrup` source on a pty pair.
fn start(script: impl Fn(usize) -> Action + Send + 'static) -> Harness {
    let (master, slave) = SerialStream::pair().expect("a pty pair");
    let path = slave.name().expect("the pty's device path");
    let asked = Arc::new(Mutex::new(Vec::new()));
    let meter = tokio::spawn(simulate(master, script, asked.clone()));

    let config = kamstrup::Config {
        interval: Duration::from_millis(1_500),
        timeout: Duration::from_millis(500),
        ..kamstrup::Config::default()
    };
    assert!(config.validate().is_empty());
    let bus = Bus::new(64);
    let readings = bus.subscribe("test");
    let stats = Arc::new(SourceStats::default());
    let mut sink = Sink::new("heat".into(), bus.publisher(), stats.clone());
    let cancel = CancellationToken::new();
    let token = cancel.clone();
    let source = tokio::spawn(async move {
        let serial_config = SerialConfig {
            port: path,
            baud: None,
            parity: None,
            data_bits: None,
            stop_bits: None,
        };
        let mut proto = config.build(MeterId::new("heat").unwrap());
        serial::run(
            &serial_config,
            kamstrup::LINE,
            proto.as_mut(),
            &mut sink,
            &token,
        )
        .await;
    });
    Harness {
        readings,
        stats,
        asked,
        cancel,
        source,
        meter,
        _slave: slave,
    }
}

impl Harness {
    async fn next_reading(&mut self, within: Duration) -> Arc<Reading> {
        tokio::time::timeout(within, self.readings.next())
            .await
            .expect("a reading in time")
            .expect("the bus is open")
    }

    fn requests(&self) -> usize {
        self.asked.lock().unwrap().len()
    }

    fn errors(&self) -> u64 {
        Stage::ALL.iter().map(|s| self.stats.errors_at(*s)).sum()
    }

    async fn stop(self) {
        self.cancel.cancel();
        tokio::time::timeout(Duration::from_secs(5), self.source)
            .await
            .expect("the source stops when cancelled")
            .unwrap();
        self.meter.abort();
    }
}

/// Every register of the simulated meter, exact, with its unit.
fn assert_complete(r: &Reading) {
    let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(json["protocol"], "kamstrup");
    assert_eq!(json["meter"], "heat");
    let v = &json["values"];
    assert_eq!(v.as_object().unwrap().len(), 8, "{json}");
    for (key, value, unit) in [
        ("kmp.60", serde_json::json!(55.006), "MWh"),
        ("kmp.80", serde_json::json!(0), "kW"),
        ("kmp.86", serde_json::json!(53.65), "°C"),
        ("kmp.87", serde_json::json!(45.79), "°C"),
        ("kmp.89", serde_json::json!(7.86), "K"),
        ("kmp.74", serde_json::json!(0), "l/h"),
        ("kmp.68", serde_json::json!(1875.56), "m³"),
        ("kmp.1004", serde_json::json!(61234), "h"),
    ] {
        assert_eq!(v[key]["value"], value, "{key}");
        assert_eq!(v[key]["unit"], unit, "{key}");
    }
}

const SOON: Duration = Duration::from_secs(10);

#[tokio::test]
async fn polls_the_meter_every_interval_with_one_request_for_eight_registers() {
    let mut h = start(|_| PROMPT);
    let first = h.next_reading(SOON).await;
    assert_complete(&first);
    let second = h.next_reading(SOON).await;
    assert_complete(&second);
    let gap = second
        .received_at
        .duration_since(first.received_at)
        .unwrap();
    assert!(gap >= Duration::from_millis(1_300), "polled after {gap:?}");
    assert_eq!(
        h.asked.lock().unwrap()[0],
        [60, 80, 86, 87, 89, 74, 68, 1004]
    );
    assert_eq!(h.requests(), 2);
    assert_eq!(h.errors(), 0);
    h.stop().await;
}

#[tokio::test]
async fn a_slow_meters_late_answer_is_used_and_its_second_answer_dropped() {
    // Every answer comes 750 ms late, after the 500 ms timeout: the request is sent again, the
    // answer to the first one completes the poll, the answer to the repeat is stale.
    let mut h = start(|_| Action::Answer {
        delay: Duration::from_millis(750),
        echo: false,
        garble: false,
    });
    assert_complete(&*h.next_reading(SOON).await);
    assert_complete(&*h.next_reading(SOON).await);
    assert!(h.requests() >= 3, "{} requests", h.requests());
    assert_eq!(h.errors(), 0);
    h.stop().await;
}

#[tokio::test]
async fn a_garbled_reply_is_asked_for_again() {
    let mut h = start(|i| Action::Answer {
        delay: Duration::ZERO,
        echo: false,
        garble: i == 0,
    });
    assert_complete(&*h.next_reading(SOON).await);
    assert_eq!(
        h.requests(),
        2,
        "the garbled reply was followed by one repeat"
    );
    assert_eq!(h.errors(), 0, "a repeat that succeeds is not an error");
    h.stop().await;
}

#[tokio::test]
async fn an_echoing_optical_head_is_skipped() {
    let mut h = start(|_| Action::Answer {
        delay: Duration::from_millis(20),
        echo: true,
        garble: false,
    });
    assert_complete(&*h.next_reading(SOON).await);
    assert_complete(&*h.next_reading(SOON).await);
    assert_eq!(h.requests(), 2);
    assert_eq!(h.errors(), 0);
    h.stop().await;
}

#[tokio::test]
async fn a_meter_that_stops_answering_is_reported_and_still_polled() {
    // Answers the first poll, ignores the next six requests (two polls of three attempts),
    // then answers again.
    let mut h = start(|i| {
        if (1..7).contains(&i) {
            Action::Silent
        } else {
            PROMPT
        }
    });
    assert_complete(&*h.next_reading(SOON).await);
    assert_complete(&*h.next_reading(SOON).await);
    assert_eq!(
        h.stats.errors_at(Stage::Framing),
        2,
        "one error per failed poll"
    );
    assert_eq!(h.errors(), 2);
    assert_eq!(h.requests(), 8);
    assert_eq!(h.stats.state(), SourceState::Running);
    assert_eq!(
        h.stats.readings.load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    h.stop().await;
}

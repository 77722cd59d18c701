//! The `influxdb` sink against a scripted HTTP endpoint: exact request line, headers and
//! (decompressed) body for 2.x and 1.x, retry with backoff on 500/429/503, isolation of refused
//! points, and the spool across runs.

use std::collections::VecDeque;
use std::io::Read as _;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, UNIX_EPOCH};

use smart_meter_core::stats::SinkStats;
use smart_meter_core::{Bus, Decimal, Key, MeterId, MeterTime, Obis, Reading, Sample, Unit};
use smart_meter_sinks::influxdb::{self, Config, Precision};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request as the endpoint saw it.
#[derive(Clone, Debug)]
struct Request {
    method: String,
    target: String,
    /// Lower-case names.
    headers: Vec<(String, String)>,
    /// Decompressed when `Content-Encoding: gzip`.
    body: String,
    at: Instant,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

type Rule = Box<dyn Fn(&Request) -> Option<u16> + Send + Sync>;

/// A minimal HTTP/1.1 server: records requests and answers by a rule on the request, else from
/// a script, else 204. A 429 carries `Retry-After: 3600`.
struct Endpoint {
    url: String,
    requests: Arc<Mutex<Vec<Request>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Endpoint {
    async fn start(script: &[u16], rule: Option<Rule>) -> Endpoint {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(script.iter().copied().collect::<VecDeque<_>>()));
        let rule: Arc<Option<Rule>> = Arc::new(rule);
        let (reqs, scr) = (requests.clone(), script.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((conn, _)) = listener.accept().await else {
                    return;
                };
                let (reqs, scr, rule) = (reqs.clone(), scr.clone(), rule.clone());
                tokio::spawn(serve(conn, reqs, scr, rule));
            }
        });
        Endpoint {
            url,
            requests,
            task,
        }
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    mut conn: TcpStream,
    reqs: Arc<Mutex<Vec<Request>>>,
    script: Arc<Mutex<VecDeque<u16>>>,
    rule: Arc<Option<Rule>>,
) {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            let mut chunk = [0u8; 4096];
            match conn.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
        let mut lines = head.split("\r\n");
        let mut first = lines.next().unwrap().split(' ');
        let method = first.next().unwrap().to_string();
        let target = first.next().unwrap().to_string();
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (k, v) = l.split_once(':').unwrap();
                (k.trim().to_ascii_lowercase(), v.trim().to_string())
            })
            .collect();
        let len: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .map(|(_, v)| v.parse().unwrap())
            .unwrap_or(0);
        buf.drain(..head_end + 4);
        while buf.len() < len {
            let mut chunk = [0u8; 4096];
            match conn.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let raw: Vec<u8> = buf.drain(..len).collect();
        let gzip = headers
            .iter()
            .any(|(k, v)| k == "content-encoding" && v == "gzip");
        let body = if gzip {
            let mut s = String::new();
            flate2::read::GzDecoder::new(&raw[..])
                .read_to_string(&mut s)
                .expect("a gzip body");
            s
        } else {
            String::from_utf8(raw).unwrap()
        };
        let req = Request {
            method,
            target,
            headers,
            body,
            at: Instant::now(),
        };
        let status = match rule.as_ref() {
            Some(r) => r(&req),
            None => None,
        }
        .or_else(|| script.lock().unwrap().pop_front())
        .unwrap_or(204);
        reqs.lock().unwrap().push(req);
        let reason = match status {
            204 => "No Content",
            400 => "Bad Request",
            429 => "Too Many Requests",
            500 => "Internal Server Error",
            503 => "Service Unavailable",
            _ => "Other",
        };
        let body = if status >= 400 {
            format!("{{\"code\":\"x\",\"message\":\"scripted {status}\"}}")
        } else {
            String::new()
        };
        let retry_after = if status == 429 {
            "Retry-After: 3600\r\n"
        } else {
            ""
        };
        let resp = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n{retry_after}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if conn.write_all(resp.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Reading `i`: meter clock 2021-09-27T09:47:15+02:00 plus `i` × 5 s, energy 12937 + `i` Wh,
/// voltage 233.7 V, a power factor of −0.95 and a meter number.
fn reading(i: u8) -> Reading {
    let mut r = Reading::new(MeterId::new("evn").unwrap(), "mbus-dlms");
    r.received_at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let s = 15 + 5 * u32::from(i);
    r.meter_time = MeterTime::new(
        2021,
        9,
        27,
        9,
        47 + (s / 60) as u8,
        (s % 60) as u8,
        None,
        Some(120),
    );
    r.samples.push(Sample::number(
        Key::Obis(Obis::ENERGY_IMPORT),
        Decimal::new(12937 + i128::from(i), 0),
        Some(Unit::WH),
    ));
    r.samples.push(Sample::number(
        Key::Obis(Obis::new(1, 0, 32, 7, 0, 255)),
        Decimal::new(2337, -1),
        Some(Unit::V),
    ));
    r.samples.push(Sample::number(
        Key::Obis(Obis::new(1, 0, 13, 7, 0, 255)),
        Decimal::new(-950, -3),
        None,
    ));
    r.samples.push(Sample::text(
        Key::Obis(Obis::METER_NUMBER),
        "1KFM 0200\"x\"",
    ));
    r
}

/// The exact line the default layout writes for [`reading`] `i` at second precision.
fn line(i: u8) -> String {
    format!(
        "smart_meter,meter=evn,protocol=mbus-dlms 1.0.1.8.0.255={},1.0.32.7.0.255=233.7,\
         1.0.13.7.0.255=-0.95,0.0.96.1.0.255=\"1KFM 0200\\\"x\\\"\" {}",
        12937 + u32::from(i),
        1_632_728_835 + 5 * u32::from(i)
    )
}

/// Runs the sink over `readings`: publishes them at once, keeps the bus open until `delivered`
/// readings were delivered (or closes it at once with `None`), and returns the stats.
async fn run_sink(
    config: Config,
    readings: Vec<Reading>,
    delivered: Option<u64>,
) -> Arc<SinkStats> {
    let bus = Bus::new(1024);
    let sub = bus.subscribe("influx");
    let stats = Arc::new(SinkStats::new(sub.dropped_counter()));
    let publisher = bus.publisher();
    drop(bus);
    let task = tokio::spawn(influxdb::run(config, sub, stats.clone()));
    for r in readings {
        publisher.publish(r);
    }
    if let Some(n) = delivered {
        let t0 = Instant::now();
        while stats.delivered.load(Ordering::Relaxed) < n {
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "only {} delivered",
                stats.delivered.load(Ordering::Relaxed)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    drop(publisher);
    tokio::time::timeout(Duration::from_secs(60), task)
        .await
        .expect("the sink finishes after the bus closes")
        .unwrap()
        .unwrap();
    stats
}

fn v2_config(url: &str) -> Config {
    let mut c = Config::v2("my org", "meters", "s3cr3t-token");
    c.url = url.to_string();
    c.precision = Precision::S;
    c.flush_interval = Duration::from_millis(200);
    c.retry_initial = Duration::from_millis(100);
    c.retry_max = Duration::from_secs(1);
    c
}

#[tokio::test]
async fn v2_writes_are_gzip_line_protocol_with_token_and_exact_body() {
    let ep = Endpoint::start(&[], None).await;
    let stats = run_sink(v2_config(&ep.url), (0..3).map(reading).collect(), None).await;
    let reqs = ep.requests();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    let r = &reqs[0];
    assert_eq!(r.method, "POST");
    assert_eq!(
        r.target,
        "/api/v2/write?org=my+org&bucket=meters&precision=s"
    );
    assert_eq!(r.header("authorization"), Some("Token s3cr3t-token"));
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.header("accept"), Some("application/json"));
    assert_eq!(r.body, format!("{}\n{}\n{}\n", line(0), line(1), line(2)));
    assert_eq!(stats.delivered.load(Ordering::Relaxed), 3);
    assert_eq!(stats.retries.load(Ordering::Relaxed), 0);
    assert_eq!(stats.queued.load(Ordering::Relaxed), 0);
    assert!(stats.connected.load(Ordering::Relaxed));
}

#[tokio::test]
async fn v1_writes_use_basic_auth_and_keep_credentials_out_of_the_url() {
    let ep = Endpoint::start(&[], None).await;
    let mut c = Config::v1("SmartMeter");
    c.url = format!("{}/influx/", ep.url);
    c.rp = Some("autogen".into());
    c.username = Some("gateway".into());
    c.password = Some("pa:ss".into());
    c.gzip = false;
    c.flush_interval = Duration::from_secs(30);
    let stats = run_sink(c, vec![reading(0)], None).await;
    let reqs = ep.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(
        r.target,
        "/influx/write?db=SmartMeter&rp=autogen&precision=ms"
    );
    // base64("gateway:pa:ss")
    assert_eq!(
        r.header("authorization"),
        Some("Basic Z2F0ZXdheTpwYTpzcw==")
    );
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(
        r.body,
        format!("{}\n", line(0).replace(" 1632728835", " 1632728835000"))
    );
    assert_eq!(stats.delivered.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn server_errors_and_throttling_are_retried_with_growing_backoff() {
    let ep = Endpoint::start(&[500, 429, 503], None).await;
    let stats = run_sink(v2_config(&ep.url), (0..2).map(reading).collect(), Some(2)).await;
    let reqs = ep.requests();
    assert_eq!(reqs.len(), 4, "{reqs:?}");
    let want = format!("{}\n{}\n", line(0), line(1));
    for r in &reqs {
        assert_eq!(r.body, want);
        assert_eq!(
            r.target,
            "/api/v2/write?org=my+org&bucket=meters&precision=s"
        );
    }
    // Backoff doubles from retry_initial (100 ms): 100, 200, 400 ms at least.
    let gaps: Vec<Duration> = reqs.windows(2).map(|w| w[1].at - w[0].at).collect();
    for (gap, min_ms) in gaps.iter().zip([100u64, 200, 400]) {
        assert!(
            *gap >= Duration::from_millis(min_ms),
            "gaps {gaps:?} must be at least 100/200/400 ms"
        );
    }
    assert_eq!(stats.retries.load(Ordering::Relaxed), 3);
    assert_eq!(stats.delivered.load(Ordering::Relaxed), 2);
    assert_eq!(stats.dropped.load(Ordering::Relaxed), 0);
    assert_eq!(stats.last_error.lock().unwrap().clone(), None);
}

#[tokio::test]
async fn retry_after_is_honoured_but_capped_by_retry_max() {
    // The endpoint sends `Retry-After: 3600` with 429: the sink waits retry_max (1 s), which is
    // longer than its own backoff (100 ms) but not an hour.
    let ep = Endpoint::start(&[429], None).await;
    let t0 = Instant::now();
    let stats = run_sink(v2_config(&ep.url), vec![reading(0)], Some(1)).await;
    let reqs = ep.requests();
    assert_eq!(reqs.len(), 2);
    let gap = reqs[1].at - reqs[0].at;
    assert!(gap >= Duration::from_millis(1000), "{gap:?}");
    assert!(t0.elapsed() < Duration::from_secs(10));
    assert_eq!(stats.delivered.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn refused_points_are_isolated_and_the_rest_delivered() {
    // InfluxDB answers 400 for a whole body when a point in it is bad; the sink splits the batch
    // until the bad reading is alone.
    let ep = Endpoint::start(
        &[],
        Some(Box::new(|r: &Request| {
            r.body.contains("12939").then_some(400)
        })),
    )
    .await;
    let stats = run_sink(v2_config(&ep.url), (0..4).map(reading).collect(), Some(3)).await;
    let bodies: Vec<String> = ep.requests().into_iter().map(|r| r.body).collect();
    let l = |i| format!("{}\n", line(i));
    assert_eq!(
        bodies,
        vec![
            format!("{}{}{}{}", l(0), l(1), l(2), l(3)),
            format!("{}{}", l(0), l(1)),
            format!("{}{}", l(2), l(3)),
            l(2),
            l(3),
        ]
    );
    assert_eq!(stats.delivered.load(Ordering::Relaxed), 3);
    assert_eq!(stats.dropped.load(Ordering::Relaxed), 1);
    assert_eq!(stats.retries.load(Ordering::Relaxed), 0);
    let err = stats.last_error.lock().unwrap().clone().unwrap();
    assert!(err.contains("400"), "{err}");
}

#[tokio::test]
async fn readings_spooled_at_shutdown_are_sent_by_the_next_run() {
    let spool = tempfile::tempdir().unwrap();
    // Nothing listens on this port.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let mut c = v2_config(&closed);
    c.spool_dir = Some(spool.path().to_path_buf());
    c.timeout = Duration::from_secs(2);
    let stats = run_sink(c, (0..3).map(reading).collect(), None).await;
    assert_eq!(stats.delivered.load(Ordering::Relaxed), 0);
    assert_eq!(stats.dropped.load(Ordering::Relaxed), 0);
    assert!(stats.retries.load(Ordering::Relaxed) >= 1);
    assert!(!stats.connected.load(Ordering::Relaxed));
    let files: Vec<_> = std::fs::read_dir(spool.path()).unwrap().collect();
    assert_eq!(files.len(), 1);

    let ep = Endpoint::start(&[], None).await;
    let mut c = v2_config(&ep.url);
    c.spool_dir = Some(spool.path().to_path_buf());
    let stats = run_sink(c, vec![reading(3)], None).await;
    let bodies: Vec<String> = ep.requests().into_iter().map(|r| r.body).collect();
    assert_eq!(
        bodies,
        vec![
            format!("{}\n{}\n{}\n", line(0), line(1), line(2)),
            format!("{}\n", line(3)),
        ]
    );
    assert_eq!(stats.delivered.load(Ordering::Relaxed), 4);
    assert_eq!(std::fs::read_dir(spool.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn an_unreachable_server_at_shutdown_without_spool_counts_the_loss() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let mut c = v2_config(&closed);
    c.timeout = Duration::from_secs(2);
    let t0 = Instant::now();
    let stats = run_sink(c, (0..3).map(reading).collect(), None).await;
    assert!(t0.elapsed() < Duration::from_secs(15));
    assert_eq!(stats.delivered.load(Ordering::Relaxed), 0);
    assert_eq!(stats.dropped.load(Ordering::Relaxed), 3);
    assert_eq!(stats.retries.load(Ordering::Relaxed), 3);
    assert_eq!(stats.queued.load(Ordering::Relaxed), 0);
}

#[test]
fn the_sink_table_selects_influxdb_by_type() {
    let c: smart_meter_sinks::SinkConfig = serde_json::from_value(serde_json::json!({
        "type": "influxdb", "org": "o", "bucket": "b", "token": "t", "flush_interval": "5s"
    }))
    .unwrap();
    assert_eq!(c.kind(), "influxdb");
    assert!(c.validate().is_empty());
    assert!(!format!("{c:?}").contains("\"t\""));
    let bad: smart_meter_sinks::SinkConfig =
        serde_json::from_value(serde_json::json!({"type": "influxdb", "db": "x", "org": "o"}))
            .unwrap();
    assert_eq!(bad.validate()[0].0, "org");
}

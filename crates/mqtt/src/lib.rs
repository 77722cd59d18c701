//! `mqtt_conn`: one supervised MQTT connection, shared by every MQTT-based sink (`mqtt`,
//! `homie`, `homeassistant`) and by the raw-frame MQTT source.
//!
//! rumqttc is correct but low-level: its event loop must be polled without pause, it retries
//! in a tight loop when the broker is down, it forgets subscriptions on a new session and can
//! drop queued publishes when the broker did not keep the session. [`spawn`] wraps it in a task
//! that
//! - polls the loop continuously and backs off exponentially (250 ms doubling up to
//!   [`Options::backoff_max`], with jitter) after errors, including when the broker is down
//!   when the gateway starts;
//! - re-subscribes [`Options::subscriptions`] on **every** CONNACK and reports
//!   [`Event::Connected`], so owners re-announce (retained status, Homie attributes, discovery
//!   configs) each time;
//! - tracks every [`Connection::publish`] until the broker has it (PUBACK for QoS 1, PUBREC for
//!   QoS 2, written for QoS 0) and reports [`Event::Delivered`]; whatever was undelivered when
//!   the connection broke is sent again, in the original order, after the next CONNACK, also
//!   when the broker lost the session. QoS 1 may therefore deliver a message twice, never zero
//!   times while the process runs;
//! - never blocks the caller: [`Connection::publish`] queues and returns at once. Owners bound
//!   their own backlog with [`Connection::outstanding`].
//!
//! The default is a persistent session (`clean_session = false`, MQTT 5: clean start off and a
//! session expiry of a week) with the caller's stable client id, so the broker also keeps
//! subscriptions and queued messages for subscribers across reconnects.
//!
//! # Protocol versions
//! MQTT 3.1.1 (default) and MQTT 5 ([`ProtocolVersion::V5`]) behave the same through this
//! module: publish, retain, QoS 0–2, last will, persistent sessions, subscriptions (also shared
//! subscriptions `$share/<group>/<filter>`). MQTT 5 properties (user properties, message
//! expiry, topic aliases, reason strings) are not used.
//!
//! # TLS
//! `mqtts://` needs the `mqtt-tls` feature (on by default): rustls with the ring provider; the CA
//! comes from `ca_file` (PEM) or the system trust store. Client certificates are not supported.
//!
//! This module depends only on rumqttc, tokio, tracing, serde and rustls, and refers to nothing
//! else in its crate: the sources crate compiles the same files for its MQTT transport.
//! The crate documentation of the sinks crate shows a short example.

mod driver;
mod supervisor;
#[cfg(feature = "mqtt-tls")]
mod tls;
mod url;

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::de::{self, Deserializer};
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};

pub use url::BrokerUrl;

/// MQTT quality of service. In config: `0`, `1` or `2`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum QoS {
    /// 0: at most once.
    AtMostOnce,
    /// 1: at least once (the default).
    #[default]
    AtLeastOnce,
    /// 2: exactly once per connection; across a reconnect a message may be repeated.
    ExactlyOnce,
}

impl QoS {
    /// From the number 0, 1 or 2.
    pub fn from_u8(n: u8) -> Option<QoS> {
        match n {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }

    /// The number 0, 1 or 2.
    pub fn as_u8(self) -> u8 {
        match self {
            QoS::AtMostOnce => 0,
            QoS::AtLeastOnce => 1,
            QoS::ExactlyOnce => 2,
        }
    }
}

impl<'de> Deserialize<'de> for QoS {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(d)?;
        u8::try_from(n)
            .ok()
            .and_then(QoS::from_u8)
            .ok_or_else(|| de::Error::custom(format!("qos must be 0, 1 or 2, got {n}")))
    }
}

/// The MQTT protocol version. In config: `protocol_version = 3` (3.1.1, also `4` or `"3.1.1"`)
/// or `5`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProtocolVersion {
    /// MQTT 3.1.1.
    #[default]
    V311,
    /// MQTT 5.
    V5,
}

impl<'de> Deserialize<'de> for ProtocolVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = ProtocolVersion;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("3 (MQTT 3.1.1) or 5")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ProtocolVersion, E> {
                match v {
                    3 | 4 => Ok(ProtocolVersion::V311),
                    5 => Ok(ProtocolVersion::V5),
                    _ => Err(E::custom(format!(
                        "protocol_version must be 3 (MQTT 3.1.1) or 5, got {v}"
                    ))),
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ProtocolVersion, E> {
                self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ProtocolVersion, E> {
                match v.trim() {
                    "3" | "3.1.1" | "4" => Ok(ProtocolVersion::V311),
                    "5" | "5.0" => Ok(ProtocolVersion::V5),
                    _ => Err(E::custom(format!(
                        "protocol_version must be 3 (MQTT 3.1.1) or 5, got {v:?}"
                    ))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// A password from config. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(p: impl Into<String>) -> Self {
        Password(p.into())
    }

    /// The password, for the CONNECT packet only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// One MQTT message, outgoing or received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Topic.
    pub topic: String,
    /// Payload bytes.
    pub payload: Vec<u8>,
    /// Quality of service.
    pub qos: QoS,
    /// Retain flag.
    pub retain: bool,
}

impl Message {
    /// A message.
    pub fn new(
        topic: impl Into<String>,
        payload: impl Into<Vec<u8>>,
        qos: QoS,
        retain: bool,
    ) -> Self {
        Message {
            topic: topic.into(),
            payload: payload.into(),
            qos,
            retain,
        }
    }
}

/// Identifies a publish in [`Event::Delivered`]. Increases with every publish of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub u64);

/// Connection settings.
#[derive(Clone, Debug)]
pub struct Options {
    /// The owner's name (sink or source), for logs.
    pub name: String,
    /// The broker.
    pub url: BrokerUrl,
    /// The client id. Keep it stable across restarts: with a persistent session the broker
    /// recognises the client by it.
    pub client_id: String,
    /// User name, if the broker wants one.
    pub username: Option<String>,
    /// Password (sent only with a user name).
    pub password: Option<Password>,
    /// 3.1.1 (default) or 5.
    pub protocol: ProtocolVersion,
    /// Keep-alive interval (5 s to 65535 s; default 30 s).
    pub keep_alive: Duration,
    /// Start a fresh session on every connect (default false: persistent session).
    pub clean_session: bool,
    /// CA certificate(s) for `mqtts://` (PEM); default: the system trust store.
    pub ca_file: Option<PathBuf>,
    /// Published by the broker when the connection drops without a DISCONNECT.
    pub last_will: Option<Message>,
    /// Topic filters subscribed on every CONNACK. Received messages arrive as
    /// [`Event::Message`].
    pub subscriptions: Vec<(String, QoS)>,
    /// Publishes in flight at once (default 100).
    pub max_inflight: u16,
    /// Largest packet sent or accepted, in bytes (default 256 KiB).
    pub max_packet_size: usize,
    /// Longest wait between reconnect attempts (default 30 s).
    pub backoff_max: Duration,
}

impl Options {
    /// Defaults for `url` and `client_id`: persistent session, MQTT 3.1.1, keep-alive 30 s.
    pub fn new(name: impl Into<String>, url: BrokerUrl, client_id: impl Into<String>) -> Self {
        Options {
            name: name.into(),
            url,
            client_id: client_id.into(),
            username: None,
            password: None,
            protocol: ProtocolVersion::V311,
            keep_alive: Duration::from_secs(30),
            clean_session: false,
            ca_file: None,
            last_will: None,
            subscriptions: Vec::new(),
            max_inflight: 100,
            max_packet_size: 256 * 1024,
            backoff_max: Duration::from_secs(30),
        }
    }
}

/// Checks connection keys as written in a sink or source table: (key, message) for each
/// problem. `url` is the text of the `url` key.
pub fn validate_keys(
    url: &str,
    client_id: Option<&str>,
    keep_alive: Option<Duration>,
    ca_file: Option<&std::path::Path>,
    has_password_without_user: bool,
) -> Vec<(String, String)> {
    let mut errors = Vec::new();
    match url.parse::<BrokerUrl>() {
        Ok(u) => {
            if u.tls && !cfg!(feature = "mqtt-tls") {
                errors.push((
                    "url".to_string(),
                    "mqtts:// needs a build with the `mqtt-tls` feature (on by default)"
                        .to_string(),
                ));
            }
            if !u.tls && ca_file.is_some() {
                errors.push((
                    "ca_file".to_string(),
                    "only used with mqtts:// URLs".to_string(),
                ));
            }
        }
        Err(e) => errors.push(("url".to_string(), e)),
    }
    if let Some(id) = client_id {
        if id.is_empty() || id.len() > 65535 {
            errors.push((
                "client_id".to_string(),
                "must have 1 to 65535 bytes".to_string(),
            ));
        }
    }
    if let Some(k) = keep_alive {
        if k < Duration::from_secs(5) || k > Duration::from_secs(65535) {
            errors.push((
                "keep_alive".to_string(),
                "must be between 5 s and 65535 s".to_string(),
            ));
        }
    }
    if let Some(p) = ca_file {
        if !p.is_file() {
            errors.push((
                "ca_file".to_string(),
                format!("no such file: {}", p.display()),
            ));
        }
    }
    if has_password_without_user {
        errors.push((
            "password".to_string(),
            "needs a username as well".to_string(),
        ));
    }
    errors
}

/// What happened on the connection, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// CONNACK received. Publish retained state (status, announcements) again now.
    Connected {
        /// Whether the broker kept the previous session.
        session_present: bool,
    },
    /// A connect attempt failed; the next one follows after the backoff.
    ConnectFailed {
        /// Why.
        error: String,
    },
    /// An established connection broke; undelivered messages are sent again after the next
    /// CONNACK.
    ConnectionLost {
        /// Why.
        error: String,
    },
    /// The broker answered the subscription of [`Options::subscriptions`].
    Subscribed {
        /// False when it refused at least one filter.
        ok: bool,
    },
    /// The broker has this publish.
    Delivered(MessageId),
    /// A message on a subscribed filter.
    Message(Message),
}

/// The receiving side of a connection's events. Consume it promptly: events are buffered
/// without bound.
pub struct Events {
    rx: mpsc::UnboundedReceiver<Event>,
}

impl Events {
    /// The next event; `None` once the connection task has ended.
    pub async fn recv(&mut self) -> Option<Event> {
        self.rx.recv().await
    }

    /// The next event if one is buffered.
    pub fn try_recv(&mut self) -> Option<Event> {
        self.rx.try_recv().ok()
    }
}

#[derive(Debug, Default)]
struct Shared {
    connected: AtomicBool,
    outstanding: AtomicUsize,
    next_id: AtomicU64,
}

/// Handle of a running connection. Dropping it disconnects (without waiting for undelivered
/// messages); use [`close`](Self::close) to drain first.
pub struct Connection {
    cmds: mpsc::UnboundedSender<supervisor::Command>,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

/// [`spawn`] failed: the settings cannot work (TLS CA file unreadable, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupError(pub String);

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SetupError {}

impl From<SetupError> for String {
    fn from(e: SetupError) -> String {
        e.0
    }
}

/// Starts the connection task on the current tokio runtime. It connects in the background
/// (retrying until the broker is up); the returned handle works at once.
///
/// # Errors
/// Only for settings that can never work (unreadable `ca_file`, `mqtts://` without TLS).
pub fn spawn(options: Options) -> Result<(Connection, Events), SetupError> {
    let (driver, client) = driver::build(&options).map_err(SetupError)?;
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared::default());
    let task = supervisor::Task {
        name: options.name,
        subscriptions: options.subscriptions,
        window: usize::from(options.max_inflight.max(1)),
        max_packet_size: options.max_packet_size,
        backoff_max: options.backoff_max,
        client,
        shared: shared.clone(),
        events: ev_tx,
    };
    let handle = tokio::spawn(supervisor::run(task, driver, cmd_rx));
    Ok((
        Connection {
            cmds: cmd_tx,
            shared,
            task: handle,
        },
        Events { rx: ev_rx },
    ))
}

impl Connection {
    /// Queues a message; never waits. It is sent as soon as (and whenever again) the
    /// connection is up, until the broker has it ([`Event::Delivered`]). A message that can
    /// never be sent (empty topic, `+`/`#` in the topic, larger than
    /// [`Options::max_packet_size`]) is dropped with an error in the log and reported as
    /// delivered, so it cannot hold up the messages behind it.
    pub fn publish(&self, message: Message) -> MessageId {
        let id = MessageId(self.shared.next_id.fetch_add(1, Ordering::Relaxed));
        self.shared.outstanding.fetch_add(1, Ordering::Relaxed);
        if self
            .cmds
            .send(supervisor::Command::Publish(id, message))
            .is_err()
        {
            // The task has ended (only after close); nothing will deliver it.
            let _ =
                self.shared
                    .outstanding
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        }
        id
    }

    /// Whether a CONNACK was received and the connection has not failed since.
    pub fn is_connected(&self) -> bool {
        self.shared.connected.load(Ordering::Relaxed)
    }

    /// Messages published and not yet delivered.
    pub fn outstanding(&self) -> usize {
        self.shared.outstanding.load(Ordering::Relaxed)
    }

    /// Keeps delivering for at most `drain`, then disconnects cleanly (so the broker does not
    /// publish the last will) and ends the task. Returns how many messages were left
    /// undelivered.
    pub async fn close(self, drain: Duration) -> usize {
        let (tx, rx) = oneshot::channel();
        let undelivered_guess = self.outstanding();
        if self
            .cmds
            .send(supervisor::Command::Close { drain, done: tx })
            .is_err()
        {
            return undelivered_guess;
        }
        let n = rx.await.unwrap_or(undelivered_guess);
        let _ = self.task.await;
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show_in_debug() {
        let p = Password::new("hunter2");
        assert_eq!(format!("{p:?}"), "<redacted>");
        let mut o = Options::new("s", "mqtt://h".parse().unwrap(), "c");
        o.password = Some(p);
        assert!(!format!("{o:?}").contains("hunter2"));
    }

    #[test]
    fn qos_and_protocol_version_parse_from_config_values() {
        #[derive(Deserialize)]
        struct T {
            qos: QoS,
            protocol_version: ProtocolVersion,
        }
        let t: T = serde_json::from_str(r#"{"qos":2,"protocol_version":5}"#).unwrap();
        assert_eq!(
            (t.qos, t.protocol_version),
            (QoS::ExactlyOnce, ProtocolVersion::V5)
        );
        let t: T = serde_json::from_str(r#"{"qos":0,"protocol_version":"3.1.1"}"#).unwrap();
        assert_eq!(
            (t.qos, t.protocol_version),
            (QoS::AtMostOnce, ProtocolVersion::V311)
        );
        assert!(serde_json::from_str::<T>(r#"{"qos":3,"protocol_version":3}"#).is_err());
        assert!(serde_json::from_str::<T>(r#"{"qos":1,"protocol_version":4.5}"#).is_err());
    }

    #[tokio::test]
    async fn settings_rumqttc_would_panic_on_are_setup_errors() {
        let mut o = Options::new("s", "mqtt://h".parse().unwrap(), "c");
        o.keep_alive = Duration::from_secs(1);
        o.protocol = ProtocolVersion::V5;
        assert!(spawn(o.clone()).err().unwrap().0.contains("keep_alive"));
        o.keep_alive = Duration::from_secs(30);
        o.client_id = String::new();
        assert!(spawn(o.clone()).err().unwrap().0.contains("client id"));
        o.client_id = "c".into();
        o.max_inflight = 0;
        let (conn, _events) = spawn(o).unwrap();
        conn.close(Duration::ZERO).await;
    }

    #[test]
    fn validation_names_the_key_at_fault() {
        let e = validate_keys(
            "mqtp://x",
            Some(""),
            Some(Duration::from_secs(1)),
            None,
            true,
        );
        let keys: Vec<&str> = e.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["url", "client_id", "keep_alive", "password"]);
        assert!(validate_keys("mqtt://h:1883", Some("id"), None, None, false).is_empty());
    }
}

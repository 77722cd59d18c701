//! The two rumqttc protocol trees (MQTT 3.1.1 at the crate root, MQTT 5 in `rumqttc::v5`)
//! behind one small surface, so the supervisor is written once.
//!
//! The event loop and the request sender are separate values: the supervisor moves the event
//! loop into the future that polls it and keeps the sender to hand over requests meanwhile.

use std::time::Duration;

use rumqttc::v5;
use rumqttc::v5::mqttbytes::v5 as p5;

use super::{Message, Options, ProtocolVersion, QoS};

/// Session expiry asked for on MQTT 5 persistent sessions: a week, so a gateway that is down
/// over a weekend finds its subscriptions and queued messages again.
const SESSION_EXPIRY_SECS: u32 = 7 * 24 * 3600;

/// What the supervisor needs to know about an event of the loop.
#[derive(Debug)]
pub(super) enum Ev {
    /// CONNACK (only successful ones; refusals are errors).
    ConnAck { session_present: bool },
    /// A message on a subscription.
    Publish(Message),
    /// PUBACK of our QoS 1 publish.
    PubAck(u16),
    /// PUBREC of our QoS 2 publish: the broker owns it now.
    PubRec(u16),
    /// SUBACK; `ok` is false when a filter was refused.
    SubAck { ok: bool },
    /// A PUBLISH was written (packet id 0 for QoS 0).
    OutPublish(u16),
    /// A PUBLISH was taken from the request channel but waits for its packet id to be freed.
    AwaitAck(u16),
    /// Our DISCONNECT was written.
    OutDisconnect,
    /// Anything else (pings, acks we send, ...).
    Other,
}

/// The event loop of either protocol version.
pub(super) enum Driver {
    V4(Box<rumqttc::EventLoop>),
    V5(Box<v5::EventLoop>),
}

/// The request sender of either protocol version.
#[derive(Clone)]
pub(super) enum Client {
    V4(rumqttc::AsyncClient),
    V5(v5::AsyncClient),
}

fn qos4(q: QoS) -> rumqttc::QoS {
    match q {
        QoS::AtMostOnce => rumqttc::QoS::AtMostOnce,
        QoS::AtLeastOnce => rumqttc::QoS::AtLeastOnce,
        QoS::ExactlyOnce => rumqttc::QoS::ExactlyOnce,
    }
}

fn qos5(q: QoS) -> v5::mqttbytes::QoS {
    match q {
        QoS::AtMostOnce => v5::mqttbytes::QoS::AtMostOnce,
        QoS::AtLeastOnce => v5::mqttbytes::QoS::AtLeastOnce,
        QoS::ExactlyOnce => v5::mqttbytes::QoS::ExactlyOnce,
    }
}

fn from_qos4(q: rumqttc::QoS) -> QoS {
    match q {
        rumqttc::QoS::AtMostOnce => QoS::AtMostOnce,
        rumqttc::QoS::AtLeastOnce => QoS::AtLeastOnce,
        rumqttc::QoS::ExactlyOnce => QoS::ExactlyOnce,
    }
}

fn from_qos5(q: v5::mqttbytes::QoS) -> QoS {
    match q {
        v5::mqttbytes::QoS::AtMostOnce => QoS::AtMostOnce,
        v5::mqttbytes::QoS::AtLeastOnce => QoS::AtLeastOnce,
        v5::mqttbytes::QoS::ExactlyOnce => QoS::ExactlyOnce,
    }
}

/// Builds the event loop and its request sender. The request channel holds `max_inflight`
/// requests plus room for subscriptions and the disconnect.
pub(super) fn build(o: &Options) -> Result<(Driver, Client), String> {
    // rumqttc asserts on these; report them instead.
    if o.keep_alive < Duration::from_secs(5) || o.keep_alive > Duration::from_secs(65535) {
        return Err(format!(
            "keep_alive must be between 5 s and 65535 s, got {:?}",
            o.keep_alive
        ));
    }
    if o.client_id.is_empty() && !o.clean_session {
        return Err("a persistent session needs a client id".into());
    }
    let transport = transport(o)?;
    let max_inflight = o.max_inflight.max(1);
    let cap = usize::from(max_inflight) + 16;
    let packet = o.max_packet_size;
    match o.protocol {
        ProtocolVersion::V311 => {
            let mut m = rumqttc::MqttOptions::new(&o.client_id, &o.url.host, o.url.port);
            m.set_keep_alive(o.keep_alive)
                .set_clean_session(o.clean_session)
                .set_inflight(max_inflight)
                .set_max_packet_size(packet, packet)
                .set_transport(transport);
            if let Some(user) = &o.username {
                let pass = o.password.as_ref().map(|p| p.expose()).unwrap_or("");
                m.set_credentials(user.clone(), pass);
            }
            if let Some(w) = &o.last_will {
                m.set_last_will(rumqttc::LastWill::new(
                    &w.topic,
                    w.payload.clone(),
                    qos4(w.qos),
                    w.retain,
                ));
            }
            let (client, el) = rumqttc::AsyncClient::new(m, cap);
            Ok((Driver::V4(Box::new(el)), Client::V4(client)))
        }
        ProtocolVersion::V5 => {
            let mut m = v5::MqttOptions::new(&o.client_id, &o.url.host, o.url.port);
            m.set_keep_alive(o.keep_alive)
                .set_clean_start(o.clean_session)
                .set_outgoing_inflight_upper_limit(max_inflight)
                .set_max_packet_size(u32::try_from(packet).ok())
                .set_transport(transport);
            if !o.clean_session {
                m.set_session_expiry_interval(Some(SESSION_EXPIRY_SECS));
            }
            if let Some(user) = &o.username {
                let pass = o.password.as_ref().map(|p| p.expose()).unwrap_or("");
                m.set_credentials(user.clone(), pass);
            }
            if let Some(w) = &o.last_will {
                m.set_last_will(p5::LastWill::new(
                    &w.topic,
                    w.payload.clone(),
                    qos5(w.qos),
                    w.retain,
                    None,
                ));
            }
            let (client, el) = v5::AsyncClient::new(m, cap);
            Ok((Driver::V5(Box::new(el)), Client::V5(client)))
        }
    }
}

#[cfg(feature = "mqtt-tls")]
fn transport(o: &Options) -> Result<rumqttc::Transport, String> {
    if !o.url.tls {
        return Ok(rumqttc::Transport::Tcp);
    }
    let config = super::tls::client_config(o.ca_file.as_deref())?;
    Ok(rumqttc::Transport::Tls(rumqttc::TlsConfiguration::Rustls(
        config,
    )))
}

#[cfg(not(feature = "mqtt-tls"))]
fn transport(o: &Options) -> Result<rumqttc::Transport, String> {
    if o.url.tls {
        return Err("mqtts:// needs a build with the `mqtt-tls` feature (on by default)".into());
    }
    Ok(rumqttc::Transport::Tcp)
}

impl Driver {
    /// Polls the loop once; hands the loop back with the result.
    pub(super) async fn poll(self) -> (Driver, Result<Ev, String>) {
        match self {
            Driver::V4(mut el) => {
                let r = el.poll().await;
                (Driver::V4(el), r.map(ev4).map_err(|e| e.to_string()))
            }
            Driver::V5(mut el) => {
                let r = el.poll().await;
                (Driver::V5(el), r.map(ev5).map_err(|e| e.to_string()))
            }
        }
    }

    /// After an error on an established connection rumqttc has moved every unacknowledged
    /// publish and every request still in the channel into `pending`, to replay them on a
    /// resumed session. The supervisor replays publishes itself (it knows which are still
    /// undelivered, also when the session was not resumed), so drop them here; keep PUBRELs,
    /// which finish QoS 2 handshakes the broker already holds. Also drop events buffered from
    /// the dead connection and a pending packet-id collision.
    pub(super) fn discard_after_error(&mut self) {
        match self {
            Driver::V4(el) => {
                el.pending
                    .retain(|r| matches!(r, rumqttc::Request::PubRel(_)));
                el.state.events.clear();
                el.state.collision = None;
            }
            Driver::V5(el) => {
                el.pending.retain(|r| matches!(r, v5::Request::PubRel(_)));
                el.state.events.clear();
                el.state.collision = None;
            }
        }
    }
}

fn ev4(e: rumqttc::Event) -> Ev {
    use rumqttc::{Event, Outgoing, Packet};
    match e {
        Event::Incoming(Packet::ConnAck(c)) => Ev::ConnAck {
            session_present: c.session_present,
        },
        Event::Incoming(Packet::Publish(p)) => Ev::Publish(Message {
            topic: p.topic,
            payload: p.payload.to_vec(),
            qos: from_qos4(p.qos),
            retain: p.retain,
        }),
        Event::Incoming(Packet::PubAck(a)) => Ev::PubAck(a.pkid),
        Event::Incoming(Packet::PubRec(a)) => Ev::PubRec(a.pkid),
        Event::Incoming(Packet::SubAck(s)) => Ev::SubAck {
            ok: s
                .return_codes
                .iter()
                .all(|c| matches!(c, rumqttc::SubscribeReasonCode::Success(_))),
        },
        Event::Outgoing(Outgoing::Publish(id)) => Ev::OutPublish(id),
        Event::Outgoing(Outgoing::AwaitAck(id)) => Ev::AwaitAck(id),
        Event::Outgoing(Outgoing::Disconnect) => Ev::OutDisconnect,
        _ => Ev::Other,
    }
}

fn ev5(e: v5::Event) -> Ev {
    use rumqttc::Outgoing;
    use v5::Event;
    match e {
        Event::Incoming(p5::Packet::ConnAck(c)) => Ev::ConnAck {
            session_present: c.session_present,
        },
        Event::Incoming(p5::Packet::Publish(p)) => Ev::Publish(Message {
            topic: String::from_utf8_lossy(&p.topic).into_owned(),
            payload: p.payload.to_vec(),
            qos: from_qos5(p.qos),
            retain: p.retain,
        }),
        Event::Incoming(p5::Packet::PubAck(a)) => Ev::PubAck(a.pkid),
        Event::Incoming(p5::Packet::PubRec(a)) => Ev::PubRec(a.pkid),
        Event::Incoming(p5::Packet::SubAck(s)) => Ev::SubAck {
            ok: s
                .return_codes
                .iter()
                .all(|c| matches!(c, p5::SubscribeReasonCode::Success(_))),
        },
        Event::Outgoing(Outgoing::Publish(id)) => Ev::OutPublish(id),
        Event::Outgoing(Outgoing::AwaitAck(id)) => Ev::AwaitAck(id),
        Event::Outgoing(Outgoing::Disconnect) => Ev::OutDisconnect,
        _ => Ev::Other,
    }
}

impl Client {
    /// Queues a publish without waiting; false when the channel is full or closed.
    pub(super) fn try_publish(&self, m: &Message) -> bool {
        match self {
            Client::V4(c) => c
                .try_publish(&m.topic, qos4(m.qos), m.retain, m.payload.clone())
                .is_ok(),
            Client::V5(c) => c
                .try_publish(&m.topic, qos5(m.qos), m.retain, m.payload.clone())
                .is_ok(),
        }
    }

    /// Queues one SUBSCRIBE for all filters; false when it could not be queued.
    pub(super) fn try_subscribe(&self, filters: &[(String, QoS)]) -> bool {
        match self {
            Client::V4(c) => c
                .try_subscribe_many(
                    filters
                        .iter()
                        .map(|(f, q)| rumqttc::SubscribeFilter::new(f.clone(), qos4(*q))),
                )
                .is_ok(),
            Client::V5(c) => c
                .try_subscribe_many(
                    filters
                        .iter()
                        .map(|(f, q)| p5::Filter::new(f.clone(), qos5(*q))),
                )
                .is_ok(),
        }
    }

    /// Queues a DISCONNECT; false when it could not be queued.
    pub(super) fn try_disconnect(&self) -> bool {
        match self {
            Client::V4(c) => c.try_disconnect().is_ok(),
            Client::V5(c) => c.try_disconnect().is_ok(),
        }
    }
}

/// The first reconnect delay; doubled after every failure up to the configured maximum.
pub(super) const FIRST_RETRY: Duration = Duration::from_millis(250);

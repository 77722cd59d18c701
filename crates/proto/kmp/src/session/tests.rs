#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use std::time::{Duration, Instant};

use super::*;
use crate::frame::Frame;
use crate::value::Number;
use crate::Unit;

/// The real capture (gemu2015/Sonoff-Tasmota#38): one frame per line.
const CAPTURE: &str = include_str!("../../vectors/kamstrup-multical-heat-kmp-tasmota-issue38.hex");

/// A fake clock: milliseconds after a fixed origin.
struct Clock(Instant);

impl Clock {
    fn new() -> Self {
        Clock(Instant::now())
    }
    fn at(&self, ms: u64) -> Instant {
        self.0 + Duration::from_millis(ms)
    }
}

/// A simulated meter that knows some registers and answers requests.
struct Meter {
    known: Vec<Register>,
}

impl Meter {
    fn new(ids: &[u16]) -> Meter {
        let known = ids
            .iter()
            .map(|&id| {
                Register::new(
                    id,
                    Unit::DegC,
                    Number {
                        mantissa: i128::from(id) * 10 + 1,
                        exponent: -1,
                    },
                    4,
                )
                .unwrap()
            })
            .collect();
        Meter { known }
    }

    fn answer(&self, request: &[u8]) -> Vec<u8> {
        let req = Request::parse(&Frame::parse(request).unwrap()).unwrap();
        Response {
            address: req.address,
            registers: req
                .registers
                .iter()
                .filter_map(|id| self.known.iter().find(|r| r.id == *id).cloned())
                .collect(),
        }
        .emit()
    }
}

fn config(registers: &[u16]) -> Config {
    Config {
        registers: registers.to_vec(),
        ..Config::new(vec![])
    }
}

fn events(s: &mut Session) -> Vec<Event> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn only_poll(s: &mut Session) -> Poll {
    let mut ev = events(s);
    assert_eq!(ev.len(), 1, "{ev:?}");
    match ev.remove(0) {
        Event::Poll(p) => p,
        other => panic!("expected a poll, got {other:?}"),
    }
}

fn ids(regs: &[Register]) -> Vec<u16> {
    regs.iter().map(|r| r.id).collect()
}

#[test]
fn polls_the_registers_in_requests_of_at_most_eight() {
    let clock = Clock::new();
    let wanted: Vec<u16> = (100..110).collect();
    let meter = Meter::new(&wanted);
    let mut s = Session::new(config(&wanted), clock.at(0));

    let first = s.poll_transmit(clock.at(0)).unwrap();
    let req = Request::parse(&Frame::parse(&first).unwrap()).unwrap();
    assert_eq!(req.registers, (100..108).collect::<Vec<_>>());
    assert!(
        s.poll_transmit(clock.at(10)).is_none(),
        "one request at a time"
    );
    s.handle_bytes(&meter.answer(&first), clock.at(700));
    assert!(events(&mut s).is_empty());
    assert_eq!(s.next_timeout(), Some(clock.at(700)));

    let second = s.poll_transmit(clock.at(700)).unwrap();
    let req = Request::parse(&Frame::parse(&second).unwrap()).unwrap();
    assert_eq!(req.registers, [108, 109]);
    s.handle_bytes(&meter.answer(&second), clock.at(900));

    let poll = only_poll(&mut s);
    assert_eq!(ids(&poll.registers), wanted);
    assert!(poll.failures.is_empty());
    assert_eq!(poll.requests, 2);
    assert_eq!(poll.started, clock.at(0));
    assert_eq!(poll.finished, clock.at(900));
    assert_eq!(
        poll.registers[0].number().unwrap(),
        Number {
            mantissa: 1001,
            exponent: -1
        }
    );
}

#[test]
fn the_next_poll_starts_one_interval_after_the_previous_one_started() {
    let clock = Clock::new();
    let meter = Meter::new(&[60]);
    let mut s = Session::new(config(&[60]), clock.at(0));
    assert_eq!(s.next_timeout(), Some(clock.at(0)));
    let req = s.poll_transmit(clock.at(5)).unwrap();
    s.handle_bytes(&meter.answer(&req), clock.at(400));
    only_poll(&mut s);
    assert_eq!(s.next_timeout(), Some(clock.at(60_000)));
    assert!(s.poll_transmit(clock.at(59_999)).is_none());
    assert!(s.poll_transmit(clock.at(60_000)).is_some());
}

#[test]
fn resends_after_each_timeout_and_gives_up_after_the_retries() {
    let clock = Clock::new();
    let mut s = Session::new(config(&[60, 80]), clock.at(0));
    let req = s.poll_transmit(clock.at(0)).unwrap();
    assert_eq!(s.next_timeout(), Some(clock.at(2_000)));
    assert!(s.poll_transmit(clock.at(1_999)).is_none());
    assert_eq!(s.poll_transmit(clock.at(2_000)).as_ref(), Some(&req));
    assert_eq!(s.poll_transmit(clock.at(4_000)).as_ref(), Some(&req));
    assert!(events(&mut s).is_empty());
    assert!(s.poll_transmit(clock.at(6_000)).is_none());

    let poll = only_poll(&mut s);
    assert!(poll.registers.is_empty());
    assert_eq!(poll.requests, 3);
    assert_eq!(
        poll.failures,
        [60, 80].map(|register| Failure {
            register,
            reason: Reason::NoResponse { attempts: 3 }
        })
    );
    assert_eq!(poll.finished, clock.at(6_000));
    assert_eq!(s.next_timeout(), Some(clock.at(60_000)));
}

#[test]
fn a_timed_out_group_does_not_stop_the_next_group() {
    let clock = Clock::new();
    let wanted: Vec<u16> = (1..=9).collect();
    let meter = Meter::new(&wanted);
    let mut s = Session::new(
        Config {
            retries: 0,
            ..config(&wanted)
        },
        clock.at(0),
    );
    s.poll_transmit(clock.at(0)).unwrap();
    let second = s.poll_transmit(clock.at(2_000)).unwrap();
    s.handle_bytes(&meter.answer(&second), clock.at(2_100));
    let poll = only_poll(&mut s);
    assert_eq!(ids(&poll.registers), [9]);
    assert_eq!(poll.failures.len(), 8);
    assert_eq!(poll.requests, 2);
}

#[test]
fn skips_the_optical_heads_echo_of_the_request() {
    let clock = Clock::new();
    let meter = Meter::new(&[60, 68]);
    let mut s = Session::new(config(&[60, 68]), clock.at(0));
    let req = s.poll_transmit(clock.at(0)).unwrap();
    let mut line = req.clone();
    line.extend(meter.answer(&req));
    s.handle_bytes(&line, clock.at(300));
    let poll = only_poll(&mut s);
    assert_eq!(ids(&poll.registers), [60, 68]);
    assert_eq!(s.skipped_bytes(), req.len() as u64);
}

#[test]
fn a_response_split_into_single_bytes_is_put_back_together() {
    let clock = Clock::new();
    let meter = Meter::new(&[60]);
    let mut s = Session::new(config(&[60]), clock.at(0));
    let req = s.poll_transmit(clock.at(0)).unwrap();
    for (i, b) in meter.answer(&req).iter().enumerate() {
        s.handle_bytes(&[*b], clock.at(i as u64 * 9));
    }
    assert_eq!(ids(&only_poll(&mut s).registers), [60]);
}

#[test]
fn a_garbled_response_is_asked_again_at_once() {
    let clock = Clock::new();
    let meter = Meter::new(&[60]);
    let mut s = Session::new(config(&[60]), clock.at(0));
    let req = s.poll_transmit(clock.at(0)).unwrap();
    let mut bad = meter.answer(&req);
    bad[6] ^= 0x10;
    s.handle_bytes(&bad, clock.at(300));
    assert!(events(&mut s).is_empty());
    assert_eq!(s.next_timeout(), Some(clock.at(300)));
    assert_eq!(s.poll_transmit(clock.at(300)).as_ref(), Some(&req));
    s.handle_bytes(&meter.answer(&req), clock.at(600));
    let poll = only_poll(&mut s);
    assert_eq!(ids(&poll.registers), [60]);
    assert_eq!(poll.requests, 2);
}

#[test]
fn garbled_responses_to_every_attempt_fail_with_the_last_error() {
    let clock = Clock::new();
    let meter = Meter::new(&[60]);
    let mut s = Session::new(config(&[60]), clock.at(0));
    let mut t = 0;
    while let Some(req) = s.poll_transmit(clock.at(t)) {
        let mut bad = meter.answer(&req);
        let n = bad.len();
        bad[n - 2] ^= 0x01; // the low CRC byte
        s.handle_bytes(&bad, clock.at(t + 200));
        t += 200;
    }
    let poll = only_poll(&mut s);
    assert_eq!(poll.requests, 3);
    assert_eq!(poll.failures.len(), 1);
    assert!(matches!(
        poll.failures[0].reason,
        Reason::BadResponse {
            error: Error::BadCrc { .. },
            attempts: 3
        }
    ));
}

#[test]
fn a_timeout_after_a_garbled_response_reports_the_garbled_response() {
    let clock = Clock::new();
    let mut s = Session::new(
        Config {
            retries: 1,
            ..config(&[60])
        },
        clock.at(0),
    );
    s.poll_transmit(clock.at(0)).unwrap();
    s.handle_bytes(&[0x40, 0x3F, 0x0D], clock.at(100));
    s.poll_transmit(clock.at(100)).unwrap();
    assert!(s.poll_transmit(clock.at(2_100)).is_none());
    let poll = only_poll(&mut s);
    assert_eq!(
        poll.failures[0].reason,
        Reason::BadResponse {
            error: Error::TooShort { len: 1, min: 4 },
            attempts: 2
        }
    );
}

#[test]
fn a_register_the_meter_leaves_out_is_reported_as_not_in_the_response() {
    let clock = Clock::new();
    let meter = Meter::new(&[60, 68]);
    let mut s = Session::new(config(&[60, 4242, 68]), clock.at(0));
    let req = s.poll_transmit(clock.at(0)).unwrap();
    s.handle_bytes(&meter.answer(&req), clock.at(300));
    let poll = only_poll(&mut s);
    assert_eq!(ids(&poll.registers), [60, 68]);
    assert_eq!(
        poll.failures,
        [Failure {
            register: 4242,
            reason: Reason::NotInResponse
        }]
    );
    assert_eq!(poll.requests, 1);
}

#[test]
fn registers_come_back_in_configured_order_whatever_the_meter_sends() {
    let clock = Clock::new();
    let mut s = Session::new(config(&[68, 60]), clock.at(0));
    s.poll_transmit(clock.at(0)).unwrap();
    let meter = Meter::new(&[60, 68]);
    let reversed = meter.answer(&Request::new(HEAT_METER, &[60, 68]).unwrap().emit());
    s.handle_bytes(&reversed, clock.at(300));
    assert_eq!(ids(&only_poll(&mut s).registers), [68, 60]);
}

#[test]
fn a_slow_meters_late_answer_counts_and_the_answer_to_the_retry_is_dropped() {
    let clock = Clock::new();
    let wanted: Vec<u16> = (1..=9).collect();
    let meter = Meter::new(&wanted);
    let mut s = Session::new(config(&wanted), clock.at(0));
    let first = s.poll_transmit(clock.at(0)).unwrap();
    let retry = s.poll_transmit(clock.at(2_000)).unwrap();
    assert_eq!(first, retry);
    // The answer to the first request arrives after the retry went out.
    s.handle_bytes(&meter.answer(&first), clock.at(2_500));
    let second = s.poll_transmit(clock.at(2_500)).unwrap();
    // The answer to the retry arrives while the second group is awaited.
    s.handle_bytes(&meter.answer(&retry), clock.at(3_000));
    assert!(s.is_waiting());
    assert_eq!(s.stale_responses(), 1);
    s.handle_bytes(&meter.answer(&second), clock.at(3_300));
    let poll = only_poll(&mut s);
    assert_eq!(ids(&poll.registers), wanted);
    assert_eq!(poll.requests, 3);
}

#[test]
fn an_answer_between_polls_is_dropped() {
    let clock = Clock::new();
    let meter = Meter::new(&[60]);
    let mut s = Session::new(config(&[60]), clock.at(0));
    let req = s.poll_transmit(clock.at(0)).unwrap();
    s.handle_bytes(&meter.answer(&req), clock.at(300));
    only_poll(&mut s);
    s.handle_bytes(&meter.answer(&req), clock.at(900));
    assert!(events(&mut s).is_empty());
    assert_eq!(s.stale_responses(), 1);
}

#[test]
fn an_answer_from_another_address_is_a_bad_response() {
    let clock = Clock::new();
    let mut s = Session::new(
        Config {
            retries: 0,
            ..config(&[60])
        },
        clock.at(0),
    );
    s.poll_transmit(clock.at(0)).unwrap();
    let other = Response {
        address: 0x7F,
        registers: vec![],
    };
    s.handle_bytes(&other.emit(), clock.at(100));
    let poll = only_poll(&mut s);
    assert_eq!(
        poll.failures[0].reason,
        Reason::BadResponse {
            error: Error::UnexpectedAddress {
                expected: 0x3F,
                found: 0x7F
            },
            attempts: 1
        }
    );
}

#[test]
fn reset_drops_the_poll_in_progress_and_starts_over() {
    let clock = Clock::new();
    let meter = Meter::new(&[60]);
    let mut s = Session::new(config(&[60]), clock.at(0));
    let req = s.poll_transmit(clock.at(0)).unwrap();
    s.handle_bytes(&req[..4], clock.at(100)); // noise, then the link drops
    s.handle_bytes(&meter.answer(&req)[..5], clock.at(150));
    s.reset();
    assert!(!s.is_waiting());
    assert_eq!(s.next_timeout(), Some(clock.at(0)));
    let again = s.poll_transmit(clock.at(1_000)).unwrap();
    assert_eq!(again, req);
    s.handle_bytes(&meter.answer(&again), clock.at(1_300));
    let poll = only_poll(&mut s);
    assert_eq!(poll.requests, 1);
    assert_eq!(s.next_timeout(), Some(clock.at(60_000)));
}

#[test]
fn duplicate_registers_are_asked_once() {
    let clock = Clock::new();
    let mut s = Session::new(config(&[60, 60, 68]), clock.at(0));
    let req = s.poll_transmit(clock.at(0)).unwrap();
    let req = Request::parse(&Frame::parse(&req).unwrap()).unwrap();
    assert_eq!(req.registers, [60, 68]);
}

#[test]
fn without_registers_there_is_nothing_to_do() {
    let clock = Clock::new();
    let mut s = Session::new(config(&[]), clock.at(0));
    assert_eq!(s.next_timeout(), None);
    assert!(s.poll_transmit(clock.at(0)).is_none());
}

#[test]
fn before_the_first_request_every_response_of_a_capture_is_reported() {
    let clock = Clock::new();
    let mut s = Session::new(Config::new(vec![]), clock.at(0));
    let bytes = hex::decode(CAPTURE.split_whitespace().collect::<String>()).unwrap();
    s.handle_bytes(&bytes, clock.at(0));
    s.finish();
    let ev = events(&mut s);
    let regs: Vec<u16> = ev
        .iter()
        .map(|e| match e {
            Event::Response(r) => {
                assert_eq!(r.registers.len(), 1);
                r.registers[0].id
            }
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(regs, [60, 80, 86, 87, 89, 74, 68, 141, 139]);
}

#[test]
fn passive_mode_reports_bad_frames_and_a_cut_off_end() {
    let clock = Clock::new();
    let mut s = Session::new(Config::new(vec![]), clock.at(0));
    let mut bytes = hex::decode("403F10003C0304430000D6DE03230D").unwrap();
    bytes.extend(hex::decode("403F1000").unwrap());
    s.handle_bytes(&bytes, clock.at(0));
    s.finish();
    let ev = events(&mut s);
    assert!(matches!(ev[0], Event::BadFrame(Error::BadCrc { .. })));
    assert_eq!(ev[1], Event::BadFrame(Error::Unterminated { len: 4 }));
    assert_eq!(ev.len(), 2);
}

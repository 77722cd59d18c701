//! Pure mapping from `proto-kmp` results to readings and frame errors.
//!
//! - A value is keyed `kmp.<register id>` ([`Key::Kmp`]), exact (mantissa and power of ten
//!   from the SIEX byte), with the unit the meter reports: DLMS units where the symbol has one
//!   (`W`, `°C`, `K`, `m³`, `h`, …), else the KMP symbol (`MWh`, `GJ`, `l/h`, …).
//! - Registers in a date or time format become ISO text (`2024-03-15`, `13:05:00`,
//!   `--03-15`) without a unit. Register 1002 (time) and 1003 (date) together set the reading's
//!   meter time (no UTC offset: KMP does not say).
//! - A register that was not read is absent from the reading, never a placeholder; it is
//!   reported as a [`FrameError`] that names it and says why.

use std::time::{Duration, SystemTime};

use proto_kmp::registers::{self, DATE, TIME};
use proto_kmp::{Calendar, Failure, Layer, Reason, Register};
use smart_meter_core::{
    Decimal, FrameError, Key, MeterId, MeterTime, Reading, Sample, Stage, Unit,
};

use super::NAME;

/// The reading for the registers read in one poll (or one response of a replayed capture),
/// and an error for each register whose value cannot be represented. `None` when no register
/// has a value.
pub fn reading(
    meter: &MeterId,
    registers: &[Register],
    received_at: SystemTime,
) -> (Option<Reading>, Vec<FrameError>) {
    let mut errors = Vec::new();
    let mut reading = Reading::new(meter.clone(), NAME);
    reading.received_at = received_at;
    for r in registers {
        match sample(r) {
            Ok(s) => reading.samples.push(s),
            Err(e) => errors.push(e),
        }
    }
    reading.meter_time = meter_time(registers);
    let reading = (!reading.samples.is_empty()).then_some(reading);
    (reading, errors)
}

/// One register as a sample.
///
/// # Errors
/// A `data` error naming the register when its mantissa does not fit.
pub fn sample(r: &Register) -> Result<Sample, FrameError> {
    let key = Key::Kmp(r.id);
    if let Some(c) = r.calendar() {
        return Ok(Sample::text(key, c.to_string()));
    }
    let n = r
        .number()
        .map_err(|e| FrameError::new(Stage::Data, format!("{}: {e}", describe(r.id))))?;
    let unit = r.unit.symbol().and_then(Unit::from_symbol);
    Ok(Sample::number(
        key,
        Decimal::new(n.mantissa, n.exponent),
        unit,
    ))
}

/// The meter's clock from registers 1002 (`hh:mm:ss`) and 1003 (`yy:mm:dd`), when both were
/// read and are valid.
pub fn meter_time(registers: &[Register]) -> Option<MeterTime> {
    let find = |id: u16| {
        registers
            .iter()
            .find(|r| r.id == id)
            .and_then(Register::calendar)
    };
    match (find(DATE)?, find(TIME)?) {
        (
            Calendar::Date { year, month, day },
            Calendar::Time {
                hour,
                minute,
                second,
            },
        ) => MeterTime::new(year, month, day, hour, minute, second, None, None),
        _ => None,
    }
}

/// One error per distinct reason, naming every register that failed for it. `timeout` is the
/// per-request timeout, for the message.
pub fn failures(failures: &[Failure], timeout: Duration) -> Vec<FrameError> {
    let mut groups: Vec<(Reason, Vec<u16>)> = Vec::new();
    for f in failures {
        match groups.iter_mut().find(|(reason, _)| *reason == f.reason) {
            Some((_, ids)) => ids.push(f.register),
            None => groups.push((f.reason, vec![f.register])),
        }
    }
    groups
        .into_iter()
        .map(|(reason, ids)| {
            let which = describe_all(&ids);
            match reason {
                Reason::NoResponse { attempts } => FrameError::new(
                    Stage::Framing,
                    format!(
                        "{which}: no response to {attempts} request{} (timeout {} each)",
                        plural(usize::from(attempts)),
                        humantime::format_duration(timeout)
                    ),
                ),
                Reason::BadResponse { error, attempts } => FrameError::new(
                    stage(&error),
                    format!(
                        "{which}: no valid response to {attempts} request{}; last one: {error}",
                        plural(usize::from(attempts))
                    ),
                ),
                Reason::NotInResponse => FrameError::new(
                    Stage::Data,
                    format!(
                        "{which}: left out of the meter's response (not a register of this \
                         meter?)"
                    ),
                ),
            }
        })
        .collect()
}

/// A frame that could not be decoded, as a frame error.
pub fn frame_error(e: &proto_kmp::Error) -> FrameError {
    FrameError::new(stage(e), e.to_string())
}

/// The pipeline stage of a KMP error.
pub fn stage(e: &proto_kmp::Error) -> Stage {
    match e.layer() {
        Layer::Framing => Stage::Framing,
        Layer::Checksum => Stage::Checksum,
        Layer::Application => Stage::Apdu,
    }
}

/// `register 60 (heat energy E1)`, or `register 4242` for an unnamed one.
pub fn describe(id: u16) -> String {
    match registers::name(id) {
        Some(name) => format!("register {id} ({name})"),
        None => format!("register {id}"),
    }
}

fn describe_all(ids: &[u16]) -> String {
    match ids {
        [one] => describe(*one),
        _ => {
            let list: Vec<String> = ids
                .iter()
                .map(|&id| match registers::name(id) {
                    Some(name) => format!("{id} ({name})"),
                    None => id.to_string(),
                })
                .collect();
            format!("registers {}", list.join(", "))
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto_kmp::{Number, Unit as KmpUnit};

    fn reg(id: u16, unit: KmpUnit, mantissa: i128, exponent: i8) -> Register {
        Register::new(id, unit, Number { mantissa, exponent }, 4).unwrap()
    }

    #[test]
    fn values_are_exact_and_carry_the_meters_unit() {
        let meter = MeterId::new("heat").unwrap();
        let regs = [
            reg(60, KmpUnit::MWh, 55006, -3),
            reg(80, KmpUnit::W, 1234, 0),
            reg(86, KmpUnit::DegC, 5365, -2),
            reg(89, KmpUnit::K, 786, -2),
            reg(68, KmpUnit::M3, 187556, -2),
            reg(74, KmpUnit::LPerH, 245, 0),
            reg(1004, KmpUnit::H, 51234, 0),
            reg(63, KmpUnit::GJ, -15, -1),
        ];
        let (r, errors) = reading(&meter, &regs, SystemTime::UNIX_EPOCH);
        assert!(errors.is_empty());
        let r = r.unwrap();
        assert_eq!(r.protocol, "kamstrup");
        let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        let v = &json["values"];
        assert_eq!(v["kmp.60"]["value"], serde_json::json!(55.006));
        assert_eq!(v["kmp.60"]["unit"], "MWh");
        assert_eq!(v["kmp.80"]["unit"], "W");
        assert_eq!(v["kmp.86"]["unit"], "°C");
        assert_eq!(v["kmp.89"]["unit"], "K");
        assert_eq!(v["kmp.68"]["unit"], "m³");
        assert_eq!(v["kmp.74"]["unit"], "l/h");
        assert_eq!(v["kmp.1004"]["unit"], "h");
        assert_eq!(v["kmp.63"]["value"], serde_json::json!(-1.5));
        assert_eq!(v["kmp.63"]["unit"], "GJ");
        // Units with a DLMS code use it, so every sink sees one spelling.
        assert_eq!(r.get(&Key::Kmp(80)).unwrap().unit, Some(Unit::W));
        assert_eq!(r.get(&Key::Kmp(86)).unwrap().unit, Some(Unit::Dlms(9)));
        assert!(r.to_json().contains("\"kmp.68\":{\"value\":1875.56,"));
    }

    #[test]
    fn date_and_time_registers_become_text_and_the_meter_clock() {
        let meter = MeterId::new("heat").unwrap();
        let regs = [
            reg(1002, KmpUnit::HhMmSs, 130_512, 0),
            reg(1003, KmpUnit::YyMmDd, 240_315, 0),
            reg(123, KmpUnit::YyMmDd, 0, 0),
        ];
        let (r, _) = reading(&meter, &regs, SystemTime::UNIX_EPOCH);
        let r = r.unwrap();
        let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(json["values"]["kmp.1002"]["value"], "13:05:12");
        assert_eq!(json["values"]["kmp.1003"]["value"], "2024-03-15");
        assert_eq!(json["values"]["kmp.1003"]["unit"], serde_json::Value::Null);
        // "Never" (0) is no date: the number is kept, without a unit.
        assert_eq!(json["values"]["kmp.123"]["value"], 0);
        assert_eq!(json["meter_time"], "2024-03-15T13:05:12");
    }

    #[test]
    fn unknown_units_keep_the_value_without_a_unit() {
        let s = sample(&reg(4242, KmpUnit::Unknown(200), 7, 0)).unwrap();
        assert_eq!(s.unit, None);
        assert_eq!(s.value.as_number(), Some(Decimal::new(7, 0)));
    }

    #[test]
    fn an_unrepresentable_value_is_a_data_error_naming_the_register() {
        let bad = Register {
            id: 60,
            unit: KmpUnit::KWh,
            siex: 0,
            mantissa: vec![0xFF; 17],
        };
        let (r, errors) = reading(&MeterId::new("m").unwrap(), &[bad], SystemTime::UNIX_EPOCH);
        assert!(r.is_none());
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].stage, Stage::Data);
        assert!(
            errors[0]
                .detail
                .starts_with("register 60 (heat energy E1): "),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn failures_are_grouped_by_reason_and_name_each_register() {
        let errs = failures(
            &[
                Failure {
                    register: 60,
                    reason: Reason::NoResponse { attempts: 3 },
                },
                Failure {
                    register: 4242,
                    reason: Reason::NoResponse { attempts: 3 },
                },
                Failure {
                    register: 1004,
                    reason: Reason::NotInResponse,
                },
                Failure {
                    register: 86,
                    reason: Reason::BadResponse {
                        error: proto_kmp::Error::BadCrc {
                            computed: 0x1234,
                            received: 0x1235,
                        },
                        attempts: 1,
                    },
                },
            ],
            Duration::from_secs(2),
        );
        assert_eq!(errs.len(), 3);
        assert_eq!(errs[0].stage, Stage::Framing);
        assert_eq!(
            errs[0].detail,
            "registers 60 (heat energy E1), 4242: no response to 3 requests (timeout 2s each)"
        );
        assert_eq!(errs[1].stage, Stage::Data);
        assert!(errs[1]
            .detail
            .starts_with("register 1004 (hour counter): left out"));
        assert_eq!(errs[2].stage, Stage::Checksum);
        assert_eq!(
            errs[2].detail,
            "register 86 (flow temperature t1): no valid response to 1 request; last one: CRC \
             mismatch: frame says 1235, computed 1234"
        );
    }
}

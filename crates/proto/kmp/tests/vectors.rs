//! Every copied KMP capture decodes to the values its metadata JSON publishes.
//!
//! The expectations are read from `vectors/*.json` (`exchanges[*].expected`), not restated
//! here.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};

use proto_kmp::{Direction, Framer, Number, Request, Response, Unit, HEAT_METER};
use serde_json::Value;

fn vectors() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "hex"))
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no vectors in {}", dir.display());
    out
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s.split_whitespace().collect::<String>()).unwrap()
}

/// A decimal number written in JSON (`55.006`, `0.0`, `245`) as (mantissa, exponent),
/// normalised, so that equal values compare equal whatever digits were written.
fn normalize(mut mantissa: i128, mut exponent: i32) -> (i128, i32) {
    if mantissa == 0 {
        return (0, 0);
    }
    while mantissa % 10 == 0 {
        mantissa /= 10;
        exponent += 1;
    }
    (mantissa, exponent)
}

fn json_decimal(v: &Value) -> (i128, i32) {
    let text = v.to_string();
    assert!(!text.contains(['e', 'E']), "exponent notation in {text}");
    let (neg, body) = match text.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, text.as_str()),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let m: i128 = format!("{int}{frac}").parse().unwrap();
    normalize(if neg { -m } else { m }, -(frac.len() as i32))
}

fn number_decimal(n: Number) -> (i128, i32) {
    normalize(n.mantissa, i32::from(n.exponent))
}

/// The unit spelling of the metadata: the source writes `m3` for m³.
fn same_unit(ours: Option<&str>, theirs: &str) -> bool {
    ours == Some(theirs) || (theirs == "m3" && ours == Some("m³"))
}

#[test]
fn every_exchange_of_every_vector_decodes_to_its_published_values() {
    let mut checked = 0;
    for hex_path in vectors() {
        let json_path = hex_path.with_extension("json");
        let meta: Value =
            serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
        assert_eq!(meta["transport"], "kmp");
        let text = std::fs::read_to_string(&hex_path).unwrap();
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let exchanges = meta["exchanges"].as_array().unwrap();
        assert_eq!(lines.len(), exchanges.len() * 2, "{}", hex_path.display());

        for (i, ex) in exchanges.iter().enumerate() {
            let request = unhex(lines[2 * i]);
            let response = unhex(lines[2 * i + 1]);
            assert_eq!(request, unhex(ex["request_hex"].as_str().unwrap()));
            assert_eq!(response, unhex(ex["response_hex"].as_str().unwrap()));

            // The request the capture shows is the one we build.
            let register = u16::try_from(ex["register"].as_u64().unwrap()).unwrap();
            assert_eq!(
                Request::new(HEAT_METER, &[register]).unwrap().emit(),
                request
            );

            let decoded = Response::parse_bytes(&response)
                .unwrap_or_else(|e| panic!("register {register}: {e}"));
            assert_eq!(decoded.address, HEAT_METER);
            assert_eq!(decoded.registers.len(), 1);
            let reg = &decoded.registers[0];
            assert_eq!(reg.id, register);

            let want = &ex["expected"];
            let code = u8::try_from(want["unit_code"].as_u64().unwrap()).unwrap();
            assert_eq!(reg.unit, Unit::from_code(code));
            let unit = want["unit"].as_str().unwrap();
            assert!(
                same_unit(reg.unit.symbol(), unit),
                "register {register}: unit {:?}, published {unit}",
                reg.unit.symbol()
            );
            let siex = u8::from_str_radix(want["siex_hex"].as_str().unwrap(), 16).unwrap();
            assert_eq!(reg.siex, siex);
            let number = reg.number().unwrap();
            assert_eq!(
                number.mantissa.unsigned_abs(),
                u128::from(want["mantissa"].as_u64().unwrap())
            );
            assert_eq!(
                number_decimal(number),
                json_decimal(&want["value"]),
                "register {register}: decoded {number}, published {}",
                want["value"]
            );
            // The summary map agrees with the per-exchange expectation.
            let summary = meta["expected"]
                .as_object()
                .unwrap()
                .iter()
                .find(|(k, _)| k.starts_with(&format!("register {register} ")))
                .map(|(_, v)| v)
                .unwrap();
            assert_eq!(json_decimal(&summary["value"]), number_decimal(number));
            checked += 1;
        }
    }
    assert_eq!(checked, 9);
}

#[test]
fn the_whole_capture_as_one_stream_yields_every_response() {
    for hex_path in vectors() {
        let bytes = unhex(&std::fs::read_to_string(&hex_path).unwrap());
        let mut framer = Framer::new(Direction::FromMeter);
        framer.push(&bytes);
        let frames: Vec<_> = std::iter::from_fn(|| framer.next_frame()).collect();
        let meta: Value = serde_json::from_str(
            &std::fs::read_to_string(hex_path.with_extension("json")).unwrap(),
        )
        .unwrap();
        assert_eq!(frames.len(), meta["exchanges"].as_array().unwrap().len());
        for f in frames {
            let f = f.unwrap();
            assert_eq!(Response::parse(&f).unwrap().to_frame(), f);
        }
    }
}

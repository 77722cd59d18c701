//! Writing numbers and JSON strings straight into a `String`, without the formatting machinery
//! and without temporary allocations. The reading JSON is written for every reading by every
//! JSON sink; these helpers keep that cost proportional to the bytes written.

/// Appends `v` in decimal, zero-padded to at least `width` digits (like `{v:0width$}`).
pub(crate) fn push_uint(out: &mut String, v: u64, width: usize) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut n = v;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for _ in buf.len() - i..width {
        out.push('0');
    }
    push_ascii(out, &buf[i..]);
}

/// Appends ASCII bytes (digits, punctuation) produced by this crate.
pub(crate) fn push_ascii(out: &mut String, bytes: &[u8]) {
    if let Ok(s) = std::str::from_utf8(bytes) {
        out.push_str(s);
    }
}

/// Appends `s` as a JSON string literal, escaped exactly as `serde_json` does: `"` and `\`
/// with a backslash; backspace, form feed, newline, carriage return and tab by their short
/// escapes; other control characters below U+0020 as `\u00XX` with lower-case hex digits;
/// everything else (DEL and non-ASCII included) as is.
pub(crate) fn push_json_str(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b >= 0x20 && b != b'"' && b != b'\\' {
            continue;
        }
        // `i` is at an ASCII byte, hence on a char boundary.
        if let Some(run) = s.get(start..i) {
            out.push_str(run);
        }
        start = i + 1;
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x08 => out.push_str("\\b"),
            0x0c => out.push_str("\\f"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\u00");
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xf)]));
            }
        }
    }
    if let Some(run) = s.get(start..) {
        out.push_str(run);
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_padded_like_format() {
        for (v, w) in [
            (0u64, 0usize),
            (0, 1),
            (0, 4),
            (7, 2),
            (12, 2),
            (123, 2),
            (2026, 4),
            (65_535, 4),
            (u64::MAX, 3),
            (u64::MAX, 25),
        ] {
            let mut s = String::from("x");
            push_uint(&mut s, v, w);
            assert_eq!(s, format!("x{v:0w$}"), "{v} width {w}");
        }
    }

    #[test]
    fn strings_are_escaped_exactly_like_serde_json() {
        let mut cases: Vec<String> = (0u32..0x80)
            .filter_map(char::from_u32)
            .map(|c| format!("a{c}b{c}"))
            .collect();
        cases.extend(
            [
                "",
                "plain",
                "\"",
                "\\\\",
                "m³/h",
                "°C Ω µ",
                "tab\tcr\rlf\n",
                "\u{7f}\u{80}\u{2028}\u{fffd}",
                "emoji 🔌 and \u{1}\u{1f}",
                "ends with a quote\"",
            ]
            .map(String::from),
        );
        for c in &cases {
            let mut s = String::from("[");
            push_json_str(&mut s, c);
            let reference = serde_json::to_string(c).unwrap();
            assert_eq!(s, format!("[{reference}"), "{c:?}");
        }
    }
}

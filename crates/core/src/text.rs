//! Writing numbers and JSON strings straight into a byte buffer, without the formatting
//! machinery and without temporary allocations. The reading JSON is written for every reading
//! by every JSON sink; these helpers keep that cost proportional to the bytes written. What
//! they append is always UTF-8 (ASCII digits and punctuation, and `&str` runs copied whole).

/// Appends `v` in decimal, zero-padded to at least `width` digits (like `{v:0width$}`).
pub(crate) fn push_uint(out: &mut Vec<u8>, v: u64, width: usize) {
    let mut buf = [b'0'; 20];
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
        out.push(b'0');
    }
    out.extend_from_slice(&buf[i..]);
}

/// Where [`push_json_str`] writes: a byte buffer or a `String`.
pub(crate) trait TextOut {
    fn put(&mut self, s: &str);
}

impl TextOut for Vec<u8> {
    fn put(&mut self, s: &str) {
        self.extend_from_slice(s.as_bytes());
    }
}

impl TextOut for String {
    fn put(&mut self, s: &str) {
        self.push_str(s);
    }
}

/// Appends `s` as a JSON string literal, escaped exactly as `serde_json` does: `"` and `\`
/// with a backslash; backspace, form feed, newline, carriage return and tab by their short
/// escapes; other control characters below U+0020 as `\u00XX` with lower-case hex digits;
/// everything else (DEL and non-ASCII included) as is.
pub(crate) fn push_json_str<O: TextOut>(out: &mut O, s: &str) {
    out.put("\"");
    let mut start = 0;
    for (i, &b) in s.as_bytes().iter().enumerate() {
        if b >= 0x20 && b != b'"' && b != b'\\' {
            continue;
        }
        // `i` is at an ASCII byte, hence on a char boundary.
        if let Some(run) = s.get(start..i) {
            out.put(run);
        }
        start = i + 1;
        match b {
            b'"' => out.put("\\\""),
            b'\\' => out.put("\\\\"),
            0x08 => out.put("\\b"),
            0x0c => out.put("\\f"),
            b'\n' => out.put("\\n"),
            b'\r' => out.put("\\r"),
            b'\t' => out.put("\\t"),
            _ => {
                const HEX: [&str; 16] = [
                    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "a", "b", "c", "d", "e", "f",
                ];
                out.put("\\u00");
                out.put(HEX[usize::from(b >> 4)]);
                out.put(HEX[usize::from(b & 0xf)]);
            }
        }
    }
    if let Some(run) = s.get(start..) {
        out.put(run);
    }
    out.put("\"");
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
            let mut s = b"x".to_vec();
            push_uint(&mut s, v, w);
            assert_eq!(s, format!("x{v:0w$}").into_bytes(), "{v} width {w}");
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
            let reference = serde_json::to_string(c).unwrap();
            let mut s = String::from("[");
            push_json_str(&mut s, c);
            assert_eq!(s, format!("[{reference}"), "{c:?}");
            let mut b = b"[".to_vec();
            push_json_str(&mut b, c);
            assert_eq!(b, format!("[{reference}").into_bytes(), "{c:?}");
        }
    }
}

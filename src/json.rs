//! JSON text written by hand into one buffer: strings (RFC 8259 escaping), members, arrays
//! of strings and decimal numbers. The decision record, the session's rendered fields and
//! the reasons are written with it on every gated request. A leaf: it imports nothing
//! from the crate.

/// `value` as a JSON string.
pub fn json_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    json_str(&mut out, value);
    out
}

/// `,"name":"value"` when the value is present.
#[inline]
pub fn json_field(out: &mut String, name: &str, value: Option<&str>) {
    if let Some(value) = value {
        out.push_str(",\"");
        out.push_str(name);
        out.push_str("\":");
        json_str(out, value);
    }
}

/// Appends `items` as a JSON array of strings.
pub fn json_str_array(out: &mut String, items: &[String]) {
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_str(out, item);
    }
    out.push(']');
}

/// Appends one of our own identifiers (`[a-z_]`, never client data) as a JSON string.
#[inline]
pub fn json_word(out: &mut String, word: &'static str) {
    out.push('"');
    out.push_str(word);
    out.push('"');
}

/// Bytes that JSON strings must escape: `"`, `\\`, control characters and DEL.
static NEEDS_ESCAPE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = b < 0x20 || b == 0x7f || b == b'"' as usize || b == b'\\' as usize;
        b += 1;
    }
    table
};

/// Whether any byte must be escaped; eight bytes at a time, the tail padded with spaces
/// (this runs over every string of every record, and a byte-at-a-time loop costs ~20
/// instructions a byte in wasm).
pub(crate) fn needs_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // Exact as an "any" test: a false positive in one lane needs a true one below it.
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS != 0;
    let word_needs_escape = |x: u64| {
        x.wrapping_sub(ONES * 0x20) & !x & HIGHS != 0
            || has_zero(x ^ (ONES * u64::from(b'"')))
            || has_zero(x ^ (ONES * u64::from(b'\\')))
            || has_zero(x ^ (ONES * 0x7f))
    };
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        if word_needs_escape(u64::from_le_bytes(word)) {
            return true;
        }
    }
    let tail = chunks.remainder();
    if tail.is_empty() {
        return false;
    }
    let mut word = [b' '; 8];
    word[..tail.len()].copy_from_slice(tail);
    word_needs_escape(u64::from_le_bytes(word))
}

/// Appends `value` as a JSON string (RFC 8259 escaping; non-ASCII UTF-8 is kept as is).
pub fn json_str(out: &mut String, value: &str) {
    out.push('"');
    if !needs_escape(value.as_bytes()) {
        out.push_str(value);
        out.push('"');
        return;
    }
    let mut start = 0;
    for (i, b) in value.bytes().enumerate() {
        if !NEEDS_ESCAPE[usize::from(b)] {
            continue;
        }
        out.push_str(value.get(start..i).unwrap_or_default());
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
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
        start = i + 1;
    }
    out.push_str(value.get(start..).unwrap_or_default());
    out.push('"');
}

/// Appends a signed integer in decimal.
pub fn push_i32(out: &mut String, value: i32) {
    if value < 0 {
        out.push('-');
    }
    push_u64(out, u64::from(value.unsigned_abs()));
}

/// Appends a decimal number.
pub fn push_u64(out: &mut String, n: u64) {
    // Statuses, stream ids and ages are mostly under 1000: digit by digit, no buffer.
    if n < 1000 {
        let n = n as u32;
        if n >= 100 {
            out.push(char::from(b'0' + (n / 100) as u8));
        }
        if n >= 10 {
            out.push(char::from(b'0' + (n / 10 % 10) as u8));
        }
        out.push(char::from(b'0' + (n % 10) as u8));
        return;
    }
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    // Two digits per division, in 32-bit arithmetic once the value fits (ages, ids).
    let mut wide = n;
    while wide > u64::from(u32::MAX) {
        let pair = (wide % 100) as usize;
        wide /= 100;
        at -= 2;
        digits[at..at + 2].copy_from_slice(&DIGIT_PAIRS[pair * 2..pair * 2 + 2]);
    }
    let mut narrow = wide as u32;
    while narrow >= 100 {
        let pair = (narrow % 100) as usize;
        narrow /= 100;
        at -= 2;
        digits[at..at + 2].copy_from_slice(&DIGIT_PAIRS[pair * 2..pair * 2 + 2]);
    }
    if narrow >= 10 {
        let pair = narrow as usize;
        at -= 2;
        digits[at..at + 2].copy_from_slice(&DIGIT_PAIRS[pair * 2..pair * 2 + 2]);
    } else {
        at -= 1;
        digits[at] = b'0' + narrow as u8;
    }
    out.reserve(digits.len() - at);
    out.extend(digits[at..].iter().map(|&d| char::from(d)));
}

/// "00" to "99", two bytes each.
static DIGIT_PAIRS: [u8; 200] = {
    let mut table = [0u8; 200];
    let mut i = 0;
    while i < 100 {
        table[i * 2] = b'0' + (i / 10) as u8;
        table[i * 2 + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_in_decimal() {
        for n in [
            0,
            7,
            10,
            99,
            100,
            101,
            1_000,
            65_536,
            1_700_000_000,
            u64::from(u32::MAX),
            u64::from(u32::MAX) + 1,
            10_000_000_000_000_000_000,
            u64::MAX,
        ] {
            let mut out = String::from("x");
            push_u64(&mut out, n);
            assert_eq!(out, format!("x{n}"));
        }
    }

    #[test]
    fn escape_check_agrees_with_the_table_at_every_offset() {
        for special in 0u8..=255 {
            for len in [1usize, 7, 8, 9, 16, 17] {
                for at in 0..len {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = special;
                    let expected = NEEDS_ESCAPE[usize::from(special)];
                    assert_eq!(
                        needs_escape(&bytes),
                        expected,
                        "byte {special:#x} at {at}/{len}"
                    );
                }
            }
        }
        assert!(!needs_escape("zoë ünïcode ☃ text".as_bytes()));
        assert!(!needs_escape(b""));
    }
}

//! The proxy-wasm pairs encoding of header maps (ABI §0): `u32 count`, then `count` ×
//! (`u32 key_len`, `u32 value_len`), then each key and value followed by a NUL. Pure code,
//! used by the filter glue for raw hostcalls; parsing never panics.

/// Serialises pairs in the encoding.
pub fn serialize(pairs: &[(String, String)]) -> Vec<u8> {
    let mut size = 4;
    for (k, v) in pairs {
        size += 8 + k.len() + v.len() + 2;
    }
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}

fn u32_at(bytes: &[u8], at: usize) -> Option<usize> {
    let raw = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]) as usize)
}

/// A checked header map that borrows the host's buffer: names and values are read as raw
/// bytes straight from the encoding, in order; nothing is copied or allocated.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pairs<'a> {
    /// The whole encoding (empty for an empty map); every length in it was checked.
    bytes: &'a [u8],
    count: usize,
}

impl<'a> Pairs<'a> {
    /// The length table (8 bytes an entry) and the data after it.
    fn parts(&self) -> (&'a [u8], &'a [u8]) {
        let table_end = 4 + self.count * 8;
        match (self.bytes.get(4..table_end), self.bytes.get(table_end..)) {
            (Some(table), Some(data)) => (table, data),
            _ => (&[], &[]),
        }
    }

    /// The entries (name, value), in order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + 'a {
        let (table, mut data) = self.parts();
        table.chunks_exact(8).map_while(move |lens| {
            let (key_len, value_len) = entry_lens(lens);
            let key = data.get(..key_len)?;
            let value = data.get(key_len + 1..key_len + 1 + value_len)?;
            data = data.get(key_len + value_len + 2..)?;
            Some((key, value))
        })
    }
}

/// An entry's (name length, value length) from its 8 bytes of the length table.
fn entry_lens(lens: &[u8]) -> (usize, usize) {
    let mut word = [0u8; 8];
    word.copy_from_slice(lens.get(..8).unwrap_or(&[0; 8]));
    let word = u64::from_le_bytes(word);
    ((word & 0xffff_ffff) as usize, (word >> 32) as usize)
}

impl crate::request::RequestHeaders for Pairs<'_> {
    fn header(&self, name: &str) -> Option<&[u8]> {
        let name = name.as_bytes();
        let (table, mut data) = self.parts();
        // Only a name of the same length is sliced and compared. Envoy hands names
        // lower-cased, as `name` is: an exact comparison finds them; the case-insensitive
        // one runs only for a same-length name that differs.
        for lens in table.chunks_exact(8) {
            let (key_len, value_len) = entry_lens(lens);
            if key_len == name.len() {
                let key = data.get(..key_len)?;
                if same_bytes(key, name) || key.eq_ignore_ascii_case(name) {
                    return data.get(key_len + 1..key_len + 1 + value_len);
                }
            }
            data = data.get(key_len + value_len + 2..)?;
        }
        None
    }

    fn each_header<'s>(&'s self, visit: &mut dyn FnMut(&'s [u8], &'s [u8])) {
        for (name, value) in self.iter() {
            visit(name, value);
        }
    }
}

/// Byte equality of two same-length slices, eight bytes at a time (a `memcmp` call in wasm
/// compares a byte per iteration).
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let mut a_words = a.chunks_exact(8);
    let mut b_words = b.chunks_exact(8);
    for (x, y) in (&mut a_words).zip(&mut b_words) {
        if u64::from_le_bytes(x.try_into().unwrap_or_default())
            != u64::from_le_bytes(y.try_into().unwrap_or_default())
        {
            return false;
        }
    }
    a_words
        .remainder()
        .iter()
        .zip(b_words.remainder())
        .all(|(x, y)| x == y)
}

/// Checks the pairs encoding without copying; None if it is malformed (a length past the
/// end, a missing NUL, more than 1024 entries).
pub fn parse(bytes: &[u8]) -> Option<Pairs<'_>> {
    if bytes.is_empty() {
        return Some(Pairs::default());
    }
    let count = u32_at(bytes, 0)?;
    if count > 1024 {
        return None;
    }
    let table_end = 4 + count * 8;
    let table = bytes.get(4..table_end)?;
    let mut data = bytes.get(table_end..)?;
    for lens in table.chunks_exact(8) {
        let (key_len, value_len) = entry_lens(lens);
        // Each of name and value is followed by a NUL.
        if data.get(key_len) != Some(&0) {
            return None;
        }
        let value_end = key_len.checked_add(1)?.checked_add(value_len)?;
        if data.get(value_end) != Some(&0) {
            return None;
        }
        data = data.get(value_end + 1..)?;
    }
    Some(Pairs { bytes, count })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects_malformed() {
        let mut b = Vec::new();
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&2u32.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(b"Ab\0\xff\0");
        let parsed = parse(&b).unwrap();
        assert_eq!(
            parsed.iter().collect::<Vec<_>>(),
            vec![(&b"Ab"[..], &b"\xff"[..])]
        );
        use crate::request::RequestHeaders;
        assert_eq!(parsed.header("ab"), Some(&b"\xff"[..]));
        assert_eq!(parsed.header("AB"), Some(&b"\xff"[..]));
        assert_eq!(parsed.header("a"), None);
        assert_eq!(parse(&b[..b.len() - 3]), None);
        assert_eq!(parse(&[255, 255, 255, 255]), None);
        assert!(same_bytes(b"authorization", b"authorization"));
        assert!(!same_bytes(b"authorization", b"authorizatioN"));
        assert!(!same_bytes(b"Authorization", b"authorization"));
        let mut no_nul = b.clone();
        let last = no_nul.len() - 1;
        no_nul[last] = b'x';
        assert_eq!(parse(&no_nul), None);
    }

    #[test]
    fn serialize_round_trips() {
        let pairs = vec![
            ("a".to_string(), "1".to_string()),
            ("b".to_string(), String::new()),
        ];
        let bytes = serialize(&pairs);
        let parsed = parse(&bytes).unwrap();
        assert_eq!(
            parsed.iter().collect::<Vec<_>>(),
            vec![(&b"a"[..], &b"1"[..]), (&b"b"[..], &b""[..])]
        );
    }
}

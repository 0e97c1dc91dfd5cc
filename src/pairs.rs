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

/// A parsed header map that borrows the host's buffer: names and values as raw bytes, in
/// order, nothing copied.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pairs<'a> {
    entries: Vec<(&'a [u8], &'a [u8])>,
}

impl<'a> Pairs<'a> {
    /// The entries (name, value), in order.
    pub fn entries(&self) -> &[(&'a [u8], &'a [u8])] {
        &self.entries
    }
}

impl crate::extract::RequestHeaders for Pairs<'_> {
    fn header(&self, name: &str) -> Option<&[u8]> {
        let name = name.as_bytes();
        self.entries
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// Parses the pairs encoding without copying; None if it is malformed.
pub fn parse(bytes: &[u8]) -> Option<Pairs<'_>> {
    if bytes.is_empty() {
        return Some(Pairs::default());
    }
    let count = u32_at(bytes, 0)?;
    if count > 1024 {
        return None;
    }
    let mut data = 4usize.checked_add(count.checked_mul(8)?)?;
    let mut entries = Vec::with_capacity(count);
    for i in 0..count {
        let key_len = u32_at(bytes, 4 + i * 8)?;
        let value_len = u32_at(bytes, 8 + i * 8)?;
        let key = bytes.get(data..data.checked_add(key_len)?)?;
        data = data.checked_add(key_len)?.checked_add(1)?;
        let value = bytes.get(data..data.checked_add(value_len)?)?;
        data = data.checked_add(value_len)?.checked_add(1)?;
        entries.push((key, value));
    }
    Some(Pairs { entries })
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
        assert_eq!(parsed.entries(), &[(&b"Ab"[..], &b"\xff"[..])]);
        use crate::extract::RequestHeaders;
        assert_eq!(parsed.header("ab"), Some(&b"\xff"[..]));
        assert_eq!(parsed.header("AB"), Some(&b"\xff"[..]));
        assert_eq!(parsed.header("a"), None);
        assert_eq!(parse(&b[..b.len() - 3]), None);
        assert_eq!(parse(&[255, 255, 255, 255]), None);
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
            parsed.entries(),
            &[(&b"a"[..], &b"1"[..]), (&b"b"[..], &b""[..])]
        );
    }
}

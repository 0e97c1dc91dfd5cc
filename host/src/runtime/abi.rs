//! ABI constants (§0), the header-map pair format and guest-memory helpers.

use wasmtime::Caller;

use super::vm::VmState;
use crate::types::HeaderList;

/// Status codes returned by hostcalls.
pub(crate) mod status {
    pub const OK: i32 = 0;
    pub const NOT_FOUND: i32 = 1;
    pub const BAD_ARGUMENT: i32 = 2;
    pub const SERIALIZATION_FAILURE: i32 = 3;
    pub const PARSE_FAILURE: i32 = 4;
    pub const INVALID_MEMORY_ACCESS: i32 = 6;
    pub const EMPTY: i32 = 7;
    pub const CAS_MISMATCH: i32 = 8;
    pub const INTERNAL_FAILURE: i32 = 10;
    pub const BROKEN_CONNECTION: u32 = 11;
    pub const UNIMPLEMENTED: i32 = 12;
}

/// cpp-host pair-parser limits (pairs_util.cc, limits.h).
const MAX_PAIRS_BYTES: usize = 1 << 20;
const MAX_PAIRS: usize = 1024;

/// Size in bytes of a header map in the §0 pair format (0 for an empty map).
pub(crate) fn pairs_size<'a, I>(pairs: I) -> usize
where
    I: IntoIterator<Item = (&'a [u8], &'a [u8])>,
{
    let (count, data_len) = pairs
        .into_iter()
        .fold((0usize, 0usize), |(n, len), (k, v)| {
            (n + 1, len + k.len() + v.len() + 2)
        });
    if count == 0 {
        0
    } else {
        4 + count * 8 + data_len
    }
}

/// Writes a header map in the §0 pair format into `out`, which must be exactly
/// [`pairs_size`] long; false (nothing promised about `out`) if it is not.
pub(crate) fn write_pairs<'a, I>(pairs: I, out: &mut [u8]) -> bool
where
    I: IntoIterator<Item = (&'a [u8], &'a [u8])>,
    I::IntoIter: Clone,
{
    let pairs = pairs.into_iter();
    if pairs_size(pairs.clone()) != out.len() {
        return false;
    }
    if out.is_empty() {
        return true;
    }
    let count = pairs.clone().count();
    let (head, mut data) = out.split_at_mut(4 + count * 8);
    head[..4].copy_from_slice(&(count as u32).to_le_bytes());
    for (slot, (key, value)) in head[4..].chunks_exact_mut(8).zip(pairs.clone()) {
        slot[..4].copy_from_slice(&(key.len() as u32).to_le_bytes());
        slot[4..].copy_from_slice(&(value.len() as u32).to_le_bytes());
    }
    for (key, value) in pairs {
        for part in [key, value] {
            let (dst, rest) = data.split_at_mut(part.len() + 1);
            dst[..part.len()].copy_from_slice(part);
            dst[part.len()] = 0;
            data = rest;
        }
    }
    true
}

/// Serializes a header map in the §0 pair format; empty map → empty bytes (host returns 0/0).
pub(crate) fn serialize_pairs<'a, I>(pairs: I) -> Vec<u8>
where
    I: IntoIterator<Item = (&'a [u8], &'a [u8])>,
    I::IntoIter: Clone,
{
    let pairs = pairs.into_iter();
    let mut out = vec![0; pairs_size(pairs.clone())];
    write_pairs(pairs, &mut out);
    out
}

/// Parses the pair format exactly as cpp-host does: anything malformed is an empty map.
pub(crate) fn deserialize_pairs(bytes: &[u8]) -> HeaderList {
    parse_pairs(bytes).unwrap_or_default()
}

fn read_u32(bytes: &[u8], at: usize) -> Option<usize> {
    let slice = bytes.get(at..at.checked_add(4)?)?;
    let array: [u8; 4] = slice.try_into().ok()?;
    Some(u32::from_le_bytes(array) as usize)
}

fn parse_pairs(bytes: &[u8]) -> Option<HeaderList> {
    if bytes.is_empty() || bytes.len() > MAX_PAIRS_BYTES {
        return None;
    }
    let count = read_u32(bytes, 0)?;
    if count > MAX_PAIRS {
        return None;
    }
    let mut sizes = Vec::with_capacity(count);
    for index in 0..count {
        let key_len = read_u32(bytes, 4 + index * 8)?;
        let value_len = read_u32(bytes, 8 + index * 8)?;
        sizes.push((key_len, value_len));
    }
    let mut at = 4 + count * 8;
    let mut pairs = Vec::with_capacity(count);
    for (key_len, value_len) in sizes {
        let key = bytes.get(at..at.checked_add(key_len)?)?.to_vec();
        at += key_len;
        if bytes.get(at) != Some(&0) {
            return None;
        }
        at += 1;
        let value = bytes.get(at..at.checked_add(value_len)?)?.to_vec();
        at += value_len;
        if bytes.get(at) != Some(&0) {
            return None;
        }
        at += 1;
        pairs.push((key, value));
    }
    (at == bytes.len()).then_some(pairs)
}

/// Reads `len` bytes at `ptr` from the guest's memory; None = out of bounds.
pub(crate) fn read_bytes(caller: &mut Caller<'_, VmState>, ptr: i32, len: i32) -> Option<Vec<u8>> {
    let memory = caller.data().memory?;
    let start = ptr as u32 as usize;
    let len = len as u32 as usize;
    if len == 0 {
        return Some(Vec::new());
    }
    let data = memory.data(&caller);
    data.get(start..start.checked_add(len)?).map(<[u8]>::to_vec)
}

/// Writes raw bytes at `ptr`; false = out of bounds.
pub(crate) fn write_bytes(caller: &mut Caller<'_, VmState>, ptr: i32, bytes: &[u8]) -> bool {
    let Some(memory) = caller.data().memory else {
        return false;
    };
    let start = ptr as u32 as usize;
    let data = memory.data_mut(caller);
    match start
        .checked_add(bytes.len())
        .and_then(|end| data.get_mut(start..end))
    {
        Some(target) => {
            target.copy_from_slice(bytes);
            true
        }
        None => false,
    }
}

pub(crate) fn write_u32(caller: &mut Caller<'_, VmState>, ptr: i32, value: u32) -> bool {
    write_bytes(caller, ptr, &value.to_le_bytes())
}

pub(crate) fn write_u64(caller: &mut Caller<'_, VmState>, ptr: i32, value: u64) -> bool {
    write_bytes(caller, ptr, &value.to_le_bytes())
}

/// Hands bytes to the guest: allocates exactly `len` via the module's allocator, copies, and
/// writes pointer and length to the return slots. Empty → 0/0 without allocating (§0).
/// Returns the status; a trap inside the allocator propagates as an error.
pub(crate) fn return_bytes(
    caller: &mut Caller<'_, VmState>,
    bytes: &[u8],
    ptr_slot: i32,
    len_slot: i32,
) -> wasmtime::Result<i32> {
    if bytes.is_empty() {
        if write_u32(caller, ptr_slot, 0) && write_u32(caller, len_slot, 0) {
            return Ok(status::OK);
        }
        return Ok(status::INVALID_MEMORY_ACCESS);
    }
    let Some(alloc) = caller.data().alloc.clone() else {
        return Ok(status::INVALID_MEMORY_ACCESS);
    };
    let Ok(len) = i32::try_from(bytes.len()) else {
        return Ok(status::INVALID_MEMORY_ACCESS);
    };
    let saved = caller.data().effective_context;
    let ptr = alloc.call(&mut *caller, len)?;
    caller.data_mut().effective_context = saved;
    if ptr == 0 || !write_bytes(caller, ptr, bytes) {
        return Ok(status::INVALID_MEMORY_ACCESS);
    }
    if write_u32(caller, ptr_slot, ptr as u32) && write_u32(caller, len_slot, bytes.len() as u32) {
        Ok(status::OK)
    } else {
        Ok(status::INVALID_MEMORY_ACCESS)
    }
}

/// Hands `len` bytes to the guest, written in place by `fill` into the guest's fresh
/// allocation (no host-side buffer). `fill` gets the VM state too, and returns false when
/// what it would write no longer has length `len`. Same status rules as [`return_bytes`].
pub(crate) fn return_with(
    caller: &mut Caller<'_, VmState>,
    len: usize,
    ptr_slot: i32,
    len_slot: i32,
    fill: impl FnOnce(&VmState, &mut [u8]) -> bool,
) -> wasmtime::Result<i32> {
    if len == 0 {
        if write_u32(caller, ptr_slot, 0) && write_u32(caller, len_slot, 0) {
            return Ok(status::OK);
        }
        return Ok(status::INVALID_MEMORY_ACCESS);
    }
    let (Some(alloc), Some(memory)) = (caller.data().alloc.clone(), caller.data().memory) else {
        return Ok(status::INVALID_MEMORY_ACCESS);
    };
    let Ok(guest_len) = i32::try_from(len) else {
        return Ok(status::INVALID_MEMORY_ACCESS);
    };
    let saved = caller.data().effective_context;
    let ptr = alloc.call(&mut *caller, guest_len)?;
    caller.data_mut().effective_context = saved;
    if ptr == 0 {
        return Ok(status::INVALID_MEMORY_ACCESS);
    }
    let start = ptr as u32 as usize;
    let (data, state) = memory.data_and_store_mut(&mut *caller);
    let filled = match start
        .checked_add(len)
        .and_then(|end| data.get_mut(start..end))
    {
        Some(target) => fill(state, target),
        None => false,
    };
    if !filled {
        return Ok(status::INVALID_MEMORY_ACCESS);
    }
    if write_u32(caller, ptr_slot, ptr as u32) && write_u32(caller, len_slot, len as u32) {
        Ok(status::OK)
    } else {
        Ok(status::INVALID_MEMORY_ACCESS)
    }
}

/// Lower-cases a header name (Envoy's LowerCaseString), in place.
pub(crate) fn lower(mut name: Vec<u8>) -> Vec<u8> {
    name.make_ascii_lowercase();
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    // §0: layout u32 N, N×(klen, vlen), then key\0value\0; malformed → empty map.
    #[test]
    fn pairs_round_trip_and_reject_malformed() {
        let pairs: Vec<(&[u8], &[u8])> = vec![(b":path", b"/a"), (b"x", b"")];
        let bytes = serialize_pairs(pairs.clone());
        assert_eq!(&bytes[..4], &2u32.to_le_bytes());
        let parsed = deserialize_pairs(&bytes);
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0], (b":path".to_vec(), b"/a".to_vec()));
        let mut truncated = bytes.clone();
        truncated.pop();
        assert!(deserialize_pairs(&truncated).is_empty());
        let mut extra = bytes;
        extra.push(0);
        assert!(deserialize_pairs(&extra).is_empty());
        assert!(deserialize_pairs(&[0, 0, 0, 0]).is_empty());
        assert!(serialize_pairs(Vec::<(&[u8], &[u8])>::new()).is_empty());
    }
}

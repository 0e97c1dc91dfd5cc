//! Whether Envoy would print a decision record now, asked with one raw hostcall per
//! request: the record's JSON is built only when Envoy's `wasm` logger is at `info` or
//! finer, so `--log-level warn` (or `/logging?wasm=warning` at run time) saves its cost.
//! The SDK's `get_log_level` panics on level 6 (`off`), which its enum cannot represent.

extern "C" {
    fn proxy_get_log_level(return_level: *mut u32) -> u32;
}

/// `info` in the proxy-wasm ABI (trace 0, debug 1, info 2, … critical 5, off 6).
const INFO: u32 = 2;

/// Whether an `info` line would be logged now (yes when the host does not answer).
pub fn info_enabled() -> bool {
    let mut level: u32 = 0;
    // SAFETY: the host writes one u32 at the address given, which is a live local.
    let status = unsafe { proxy_get_log_level(&mut level) };
    status != 0 || level <= INFO
}

//! The host's wall clock in whole seconds, read with one raw hostcall. The SDK's
//! `get_current_time` builds a `SystemTime` that is then taken apart again; this runs on
//! every request.

extern "C" {
    fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
}

/// Seconds since the Unix epoch (0 if the host does not answer).
pub fn now_secs() -> u64 {
    let mut nanos: u64 = 0;
    // SAFETY: the host writes one u64 at the address given, which is a live local.
    let status = unsafe { proxy_get_current_time_nanoseconds(&mut nanos) };
    if status != 0 {
        return 0;
    }
    nanos / 1_000_000_000
}

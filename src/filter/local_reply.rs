//! `proxy_send_local_response` with response-code details. The SDK's `send_http_response`
//! always passes empty details; Envoy access logs show ours (e.g. `mfa_gate_step_up`).

use crate::response::LocalReply;

extern "C" {
    fn proxy_send_local_response(
        status_code: u32,
        status_code_details_data: *const u8,
        status_code_details_size: usize,
        body_data: *const u8,
        body_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
}

/// Sends `reply` as the stream's local response. Returns false if the host refused it.
pub fn send(reply: &LocalReply) -> bool {
    let headers = crate::pairs::serialize(&reply.headers);
    let details = reply.details.as_bytes();
    // SAFETY: every pointer/length pair describes a live slice for the duration of the
    // call; the host copies the data before returning.
    let status = unsafe {
        proxy_send_local_response(
            reply.status,
            details.as_ptr(),
            details.len(),
            reply.body.as_ptr(),
            reply.body.len(),
            headers.as_ptr(),
            headers.len(),
            -1,
        )
    };
    status == 0
}

//! Reads the whole request header map in one hostcall, as bytes. The SDK's
//! `get_http_request_headers_bytes` would panic on a header name that is not UTF-8; this
//! parser never panics (a malformed map reads as empty, as Envoy's own parser treats it).

/// `MapType::HttpRequestHeaders`.
const HTTP_REQUEST_HEADERS: u32 = 0;

extern "C" {
    fn proxy_get_header_map_pairs(
        map_type: u32,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> u32;
}

/// The raw request header map in the pairs encoding (parse with [`crate::pairs::parse`]);
/// empty if unavailable.
pub fn request_header_bytes() -> Vec<u8> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: the host writes a pointer to `size` bytes it allocated with the module's
    // allocator (`proxy_on_memory_allocate`, exactly `size` bytes), or null; we take
    // ownership of that allocation and free it when `bytes` drops.
    unsafe {
        if proxy_get_header_map_pairs(HTTP_REQUEST_HEADERS, &mut data, &mut size) != 0
            || data.is_null()
        {
            return Vec::new();
        }
        Vec::from_raw_parts(data, size, size)
    }
}

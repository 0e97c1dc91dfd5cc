//! What the upstream may make of a request, worked out before any rule is matched.
//!
//! A rule is judged by what the application will serve, not by the bytes the filter sees.
//! Application servers clean paths (`/x/../admin` → `/admin`), honour method overrides
//! (`X-HTTP-Method-Override: DELETE`, `?_method=DELETE`, a form's `_method` field), treat
//! `HEAD` as `GET`, and read the host from `X-Forwarded-Host` or `Forwarded` behind a proxy.
//! So a request has *readings*: every method, path and host it may be served as. The engine
//! matches each reading and keeps the strictest outcome; one that cannot be read safely at
//! all (an ambiguous path in `reject` mode, an odd `Host`) is refused here.
//!
//! Never decodes more than it must and never panics; everything is raw bytes.

use smallvec::SmallVec;
use std::borrow::Cow;

/// Read access to the request's headers by lower-case name, as raw bytes.
pub trait RequestHeaders {
    /// The first value of header `name`, if present.
    fn header(&self, name: &str) -> Option<&[u8]>;

    /// Visits every entry (name, value) in order, repeated names included (HTTP/1 keeps a
    /// second `Cookie` line as its own entry).
    fn each_header<'s>(&'s self, visit: &mut dyn FnMut(&'s [u8], &'s [u8]));
}

impl RequestHeaders for [(String, Vec<u8>)] {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    fn each_header<'s>(&'s self, visit: &mut dyn FnMut(&'s [u8], &'s [u8])) {
        for (k, v) in self {
            visit(k.as_bytes(), v);
        }
    }
}

impl RequestHeaders for Vec<(String, Vec<u8>)> {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.as_slice().header(name)
    }

    fn each_header<'s>(&'s self, visit: &mut dyn FnMut(&'s [u8], &'s [u8])) {
        self.as_slice().each_header(visit);
    }
}

/// Every value of header `name` (ASCII case-insensitive), in order.
pub fn header_values<'s>(headers: &'s dyn RequestView, name: &str) -> Vec<&'s [u8]> {
    let mut values = Vec::new();
    headers.each_header(&mut |k, v| {
        if k.eq_ignore_ascii_case(name.as_bytes()) {
            values.push(v);
        }
    });
    values
}

/// The engine's view of one request: its headers, read once by the glue, and the host's
/// properties and the request body, which cost a hostcall each and so are read only when
/// asked for (a configured stage that needs them), at most once per request.
pub trait RequestView: RequestHeaders {
    /// The property at `path` (e.g. `["metadata"]`, `["source", "address"]`), as the host
    /// serializes it; `None` when absent or not available in this phase.
    fn property(&self, path: &[&str]) -> Option<Cow<'_, [u8]>> {
        let _ = path;
        None
    }

    /// The request body buffered so far; `None` when the host has not buffered it.
    fn body(&self) -> Option<&[u8]> {
        None
    }
}

impl RequestView for [(String, Vec<u8>)] {}

impl RequestView for Vec<(String, Vec<u8>)> {}

/// How a path that an upstream could read as another path is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AmbiguousPaths {
    /// 400 `ambiguous_path:<kind>` (the default).
    Reject,
    /// Match the raw path and its normalised form; the strictest outcome wins.
    Normalize,
}

/// How paths are read (compiled from the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathReading {
    /// What to do with ambiguous paths.
    pub ambiguous: AmbiguousPaths,
    /// Also match every path ASCII case-insensitively (for upstreams such as IIS that
    /// serve `/ADMIN` as `/admin`); the exact reading is kept, so the strictest wins.
    pub case_insensitive: bool,
}

impl Default for PathReading {
    fn default() -> Self {
        PathReading {
            ambiguous: AmbiguousPaths::Reject,
            case_insensitive: false,
        }
    }
}

/// A request that cannot be read safely.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreadable {
    /// A path trick (`double_slash`, `dot_segment`, ...): see [`ambiguous_path`].
    AmbiguousPath(&'static str),
    /// An authority or forwarded host that is not a plain `host[:port]`.
    InvalidHost(&'static str),
}

/// The most readings of one kind kept (methods: the request's, `GET` for `HEAD`, overrides).
const MAX_READINGS: usize = 8;

/// Every method, path and host a request may be served as.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Readings<'a> {
    /// The request's method first, then `GET` for `HEAD` and override methods.
    pub methods: SmallVec<[Cow<'a, [u8]>; 2]>,
    /// The raw path (query excluded) first, then its normalised form; each with whether it
    /// is compared ASCII case-insensitively (`paths.case_insensitive` adds such readings).
    pub paths: SmallVec<[(Cow<'a, [u8]>, bool); 2]>,
    /// The authority's host (port removed) first, then forwarded hosts.
    pub hosts: SmallVec<[Cow<'a, [u8]>; 2]>,
}

/// Reads a request. `forwarded_hosts`: whether `X-Forwarded-Host` / `Forwarded: host=`
/// matter (some rule matches on hosts).
pub fn read<'a>(
    headers: &'a dyn RequestView,
    paths: PathReading,
    forwarded_hosts: bool,
) -> Result<Readings<'a>, Unreadable> {
    let method = headers.header(":method").unwrap_or_default();
    let target = headers.header(":path").unwrap_or_default();
    let (path, query) = split_target(target);
    let mut readings = Readings::default();

    readings.methods.push(Cow::Borrowed(method));
    add_method_readings(headers, method, query, &mut readings.methods);

    match ambiguous_path(path) {
        None => readings.paths.push((Cow::Borrowed(path), false)),
        Some(kind) if paths.ambiguous == AmbiguousPaths::Reject => {
            return Err(Unreadable::AmbiguousPath(kind))
        }
        Some(_) => {
            readings.paths.push((Cow::Borrowed(path), false));
            let normalised = normalize_path(path);
            if normalised != path {
                readings.paths.push((Cow::Owned(normalised), false));
            }
        }
    }
    if paths.case_insensitive {
        let folded: SmallVec<[(Cow<'a, [u8]>, bool); 2]> = readings
            .paths
            .iter()
            .filter(|(path, _)| path.iter().any(u8::is_ascii_alphabetic))
            .map(|(path, _)| (path.clone(), true))
            .collect();
        readings.paths.extend(folded);
    }

    let authority = headers.header(":authority").unwrap_or_default();
    let host = parse_authority(authority).map_err(Unreadable::InvalidHost)?;
    readings.hosts.push(Cow::Borrowed(host));
    if forwarded_hosts {
        add_forwarded_hosts(headers, &mut readings.hosts)?;
    }
    Ok(readings)
}

/// The path and the query of a request target (`#fragment` dropped).
pub fn split_target(target: &[u8]) -> (&[u8], &[u8]) {
    let end = target
        .iter()
        .position(|&b| b == b'#')
        .unwrap_or(target.len());
    let target = &target[..end];
    match target.iter().position(|&b| b == b'?') {
        Some(q) => (&target[..q], &target[q + 1..]),
        None => (target, &[]),
    }
}

/// The override headers frameworks honour (Rails, Laravel, Symfony, express
/// method-override, ASP.NET, Google APIs).
const OVERRIDE_HEADERS: [&[u8]; 3] = [
    b"x-http-method-override",
    b"x-http-method",
    b"x-method-override",
];

/// Methods a form POST may stand for through a `_method` body field, which is not read
/// here (the body comes later): a form POST is also matched as each of them.
const FORM_OVERRIDABLE: [&[u8]; 3] = [b"PUT", b"PATCH", b"DELETE"];

fn add_method_readings<'a>(
    headers: &'a dyn RequestView,
    method: &'a [u8],
    query: &'a [u8],
    methods: &mut SmallVec<[Cow<'a, [u8]>; 2]>,
) {
    let mut add = |m: Cow<'a, [u8]>| {
        let m = trim(m);
        if !m.is_empty()
            && m.iter().all(|b| b.is_ascii_alphabetic())
            && methods.len() < MAX_READINGS
            && !methods.iter().any(|have| have.eq_ignore_ascii_case(&m))
        {
            methods.push(m);
        }
    };
    if method.eq_ignore_ascii_case(b"HEAD") {
        add(Cow::Borrowed(b"GET"));
    }
    headers.each_header(&mut |name, value| {
        if OVERRIDE_HEADERS
            .iter()
            .any(|h| name.eq_ignore_ascii_case(h))
        {
            for m in value.split(|&b| b == b',') {
                add(Cow::Borrowed(m));
            }
        }
    });
    for pair in query.split(|&b| b == b'&') {
        let (key, value) = match pair.iter().position(|&b| b == b'=') {
            Some(eq) => (&pair[..eq], &pair[eq + 1..]),
            None => (pair, &b""[..]),
        };
        if percent_decode(key).eq_ignore_ascii_case(b"_method") {
            add(Cow::Owned(percent_decode(value).into_owned()));
        }
    }
    let is_form = headers.header("content-type").is_some_and(|ct| {
        let ct = trim(Cow::Borrowed(ct)).to_ascii_lowercase();
        ct.starts_with(b"application/x-www-form-urlencoded")
            || ct.starts_with(b"multipart/form-data")
    });
    if is_form && method.eq_ignore_ascii_case(b"POST") {
        for m in FORM_OVERRIDABLE {
            add(Cow::Borrowed(m));
        }
    }
}

/// `value` without leading and trailing spaces and tabs (copied only when owned and trimmed).
fn trim(value: Cow<'_, [u8]>) -> Cow<'_, [u8]> {
    match value {
        Cow::Borrowed(v) => Cow::Borrowed(trim_bytes(v)),
        Cow::Owned(v) if trim_bytes(&v).len() == v.len() => Cow::Owned(v),
        Cow::Owned(v) => Cow::Owned(trim_bytes(&v).to_vec()),
    }
}

/// Hosts from `X-Forwarded-Host` (every entry, comma-separated lists) and `Forwarded`
/// (`host=` parameters), each parsed as strictly as the authority.
fn add_forwarded_hosts<'a>(
    headers: &'a dyn RequestView,
    hosts: &mut SmallVec<[Cow<'a, [u8]>; 2]>,
) -> Result<(), Unreadable> {
    let mut odd = false;
    let mut add = |value: &'a [u8]| match parse_authority(value) {
        Ok(host) => {
            if hosts.len() < MAX_READINGS && !hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
                hosts.push(Cow::Borrowed(host));
            }
        }
        Err(_) => odd = true,
    };
    headers.each_header(&mut |name, value| {
        if name.eq_ignore_ascii_case(b"x-forwarded-host") {
            for entry in value.split(|&b| b == b',') {
                add(trim_bytes(entry));
            }
        } else if name.eq_ignore_ascii_case(b"forwarded") {
            for element in value.split(|&b| b == b',' || b == b';') {
                let element = trim_bytes(element);
                if element.len() > 5 && element[..5].eq_ignore_ascii_case(b"host=") {
                    let host = &element[5..];
                    let host = match host {
                        [b'"', inner @ .., b'"'] => inner,
                        _ => host,
                    };
                    add(host);
                }
            }
        }
    });
    if odd {
        return Err(Unreadable::InvalidHost("forwarded_host"));
    }
    Ok(())
}

/// `value` without leading and trailing spaces and tabs.
fn trim_bytes(value: &[u8]) -> &[u8] {
    let is_space = |b: &u8| matches!(b, b' ' | b'\t');
    let start = value
        .iter()
        .position(|b| !is_space(b))
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !is_space(b))
        .map_or(start, |e| e + 1);
    &value[start..end]
}

/// The host of an authority (`host`, `host:port`, `[v6]`, `[v6]:port`), port removed; the
/// kind of oddity otherwise. Accepted: a registered name of letters, digits, `-`, `_` and
/// dots (one trailing dot allowed, no empty label), an IPv4 address, or a bracketed IPv6
/// literal; a port of 1–5 digits up to 65535. Refused: userinfo (`evil@host`), lists
/// (`a,b`, as Envoy joins two `Host` headers), a second port, empty labels (`host..`),
/// percent-encoding, spaces and anything else an upstream might read as another host.
pub fn parse_authority(authority: &[u8]) -> Result<&[u8], &'static str> {
    if authority.is_empty() {
        return Err("empty");
    }
    if authority.contains(&b'@') {
        return Err("userinfo");
    }
    if authority.contains(&b',') {
        return Err("list");
    }
    let (host, port) = if authority.starts_with(b"[") {
        let close = authority
            .iter()
            .position(|&b| b == b']')
            .ok_or("bad_ipv6")?;
        let literal = &authority[1..close];
        if literal.is_empty()
            || !literal
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return Err("bad_ipv6");
        }
        let rest = &authority[close + 1..];
        let port = match rest {
            [] => None,
            [b':', port @ ..] => Some(port),
            _ => return Err("bad_ipv6"),
        };
        (&authority[..=close], port)
    } else {
        match authority.iter().position(|&b| b == b':') {
            Some(colon) => (&authority[..colon], Some(&authority[colon + 1..])),
            None => (authority, None),
        }
    };
    if let Some(port) = port {
        let numeric = !port.is_empty() && port.len() <= 5 && port.iter().all(u8::is_ascii_digit);
        let value = port
            .iter()
            .fold(0u32, |n, &d| n * 10 + u32::from(d.wrapping_sub(b'0')));
        if !numeric || value > 65535 {
            return Err("bad_port");
        }
    }
    if host.starts_with(b"[") {
        return Ok(host);
    }
    let name = host.strip_suffix(b".").unwrap_or(host);
    if name.is_empty() {
        return Err("empty");
    }
    for label in name.split(|&b| b == b'.') {
        if label.is_empty() {
            return Err("empty_label");
        }
        if !label
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err("bad_character");
        }
    }
    Ok(host)
}

/// Names a path trick that makes the raw path differ from what an upstream may serve:
/// `control_char`, `percent_encoding` (an encoded byte that changes meaning or should never
/// be encoded: unreserved characters, `/`, `\`, `;`, `%`, control bytes; or a malformed
/// `%`), `backslash`, `double_slash`, `semicolon` (path parameters) or `dot_segment`
/// (`/./`, `/../`, trailing `/.` or `/..`). `None` for a plain path; `%20` and other
/// encodings of bytes that mean nothing special stay plain. Envoy's `normalize_path`,
/// `merge_slashes` and `path_with_escaped_slashes_action` remove most of these before the
/// filter runs; this is the filter's own defence when they are off.
pub fn ambiguous_path(path: &[u8]) -> Option<&'static str> {
    if path.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return Some("control_char");
    }
    let mut i = 0;
    while let Some(offset) = path[i..].iter().position(|&b| b == b'%') {
        let at = i + offset;
        match decode_escape(path, at) {
            Some(b) if changes_meaning(b) => return Some("percent_encoding"),
            Some(_) => {}
            None => return Some("percent_encoding"),
        }
        i = at + 1;
    }
    if path.contains(&b'\\') {
        return Some("backslash");
    }
    if path.windows(2).any(|w| w == b"//") {
        return Some("double_slash");
    }
    if path.contains(&b';') {
        return Some("semicolon");
    }
    let dot_segment = path
        .split(|&b| b == b'/')
        .skip(1)
        .any(|segment| segment == b"." || segment == b"..");
    if dot_segment {
        return Some("dot_segment");
    }
    None
}

/// Whether an encoded byte means something once an upstream decodes it.
fn changes_meaning(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/' | b'\\' | b';' | b'%')
        || b < 0x20
        || b == 0x7f
}

/// The byte `%XX` at `at` stands for, if well formed.
fn decode_escape(path: &[u8], at: usize) -> Option<u8> {
    let hex = |b: u8| (b as char).to_digit(16);
    let hi = hex(*path.get(at + 1)?)?;
    let lo = hex(*path.get(at + 2)?)?;
    u8::try_from(hi * 16 + lo).ok()
}

/// Percent-decodes every well-formed `%XX` and reads `+` as a space, as query strings and
/// `application/x-www-form-urlencoded` bodies are decoded (malformed escapes stay as they are).
pub fn percent_decode(bytes: &[u8]) -> Cow<'_, [u8]> {
    if !bytes.contains(&b'%') && !bytes.contains(&b'+') {
        return Cow::Borrowed(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], decode_escape(bytes, i)) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    Cow::Owned(out)
}

/// The path an application server would serve: meaningful escapes decoded (up to three
/// rounds, for double encoding), `\` read as `/`, path parameters (`;x=1`) dropped,
/// repeated slashes merged and dot segments resolved (RFC 3986 §5.2.4).
pub fn normalize_path(path: &[u8]) -> Vec<u8> {
    let mut decoded = path.to_vec();
    for _ in 0..3 {
        let mut out = Vec::with_capacity(decoded.len());
        let mut changed = false;
        let mut i = 0;
        while i < decoded.len() {
            match decode_escape(&decoded, i) {
                Some(b) if decoded[i] == b'%' && changes_meaning(b) => {
                    out.push(b);
                    i += 3;
                    changed = true;
                }
                _ => {
                    out.push(decoded[i]);
                    i += 1;
                }
            }
        }
        decoded = out;
        if !changed {
            break;
        }
    }
    for b in decoded.iter_mut() {
        if *b == b'\\' {
            *b = b'/';
        }
    }
    let mut segments: Vec<&[u8]> = Vec::new();
    for segment in decoded.split(|&b| b == b'/') {
        let segment = match segment.iter().position(|&b| b == b';') {
            Some(semi) => &segment[..semi],
            None => segment,
        };
        match segment {
            b"" | b"." => {}
            b".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = Vec::with_capacity(decoded.len());
    for segment in &segments {
        out.push(b'/');
        out.extend_from_slice(segment);
    }
    let ends_as_directory = decoded.ends_with(b"/")
        || decoded.ends_with(b"/.")
        || decoded.ends_with(b"/..")
        || segments.is_empty();
    if ends_as_directory {
        out.push(b'/');
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn headers(list: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    fn request(method: &str, path: &str, extra: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        let mut h = headers(&[
            (":method", method),
            (":path", path),
            (":authority", "app.example.com"),
        ]);
        h.extend(headers(extra));
        h
    }

    fn texts(list: &[Cow<'_, [u8]>]) -> Vec<String> {
        list.iter()
            .map(|m| String::from_utf8_lossy(m).into_owned())
            .collect()
    }

    #[test]
    fn every_path_trick_of_the_report_is_ambiguous() {
        for (path, kind) in [
            ("/x/../admin/users", "dot_segment"),
            ("/api/../admin/users", "dot_segment"),
            ("//admin/users", "double_slash"),
            ("/%61dmin/users", "percent_encoding"),
            ("/admin%2Fusers", "percent_encoding"),
            ("/admin%2fusers", "percent_encoding"),
            ("/%2e%2e/admin/users", "percent_encoding"),
            ("/admin;x=1/users", "semicolon"),
            ("/./admin/users", "dot_segment"),
            ("/api/%2e%2e/admin/users", "percent_encoding"),
            ("/admin/%252e%252e/x", "percent_encoding"),
            ("/admin\\users", "backslash"),
            ("/admin%5cusers", "percent_encoding"),
            ("/admin/%zz", "percent_encoding"),
            ("/admin/%", "percent_encoding"),
            ("/admin/%00", "percent_encoding"),
            ("/admin\t", "control_char"),
            ("/admin/..", "dot_segment"),
        ] {
            assert_eq!(ambiguous_path(path.as_bytes()), Some(kind), "{path}");
        }
    }

    #[test]
    fn plain_paths_are_not_ambiguous() {
        for path in [
            "/",
            "/admin/users",
            "/search/hello%20world",
            "/files/%E2%82%AC",
            "/a.b/c..d/.well-known/x",
            "/caf\u{e9}",
            "",
        ] {
            assert_eq!(ambiguous_path(path.as_bytes()), None, "{path}");
        }
    }

    #[test]
    fn normalised_paths_are_what_application_servers_serve() {
        for (path, served) in [
            ("/x/../admin/users", "/admin/users"),
            ("//admin/users", "/admin/users"),
            ("/%61dmin/users", "/admin/users"),
            ("/admin%2Fusers", "/admin/users"),
            ("/%2e%2e/admin/users", "/admin/users"),
            ("/admin;x=1/users", "/admin/users"),
            ("/./admin/users", "/admin/users"),
            ("/api/%2e%2e/admin/users", "/admin/users"),
            ("/api/%252e%252e/admin/users", "/admin/users"),
            ("/admin\\users", "/admin/users"),
            ("/admin/", "/admin/"),
            ("/admin/x/..", "/admin/"),
            ("/..", "/"),
            ("/search/hello%20world", "/search/hello%20world"),
        ] {
            assert_eq!(
                String::from_utf8(normalize_path(path.as_bytes())).unwrap(),
                served,
                "{path}"
            );
        }
    }

    #[test]
    fn ambiguous_paths_are_refused_or_read_both_ways() {
        let h = request("GET", "/x/../admin/users?a=1", &[]);
        assert_eq!(
            read(&h, PathReading::default(), false),
            Err(Unreadable::AmbiguousPath("dot_segment"))
        );
        let normalize = PathReading {
            ambiguous: AmbiguousPaths::Normalize,
            case_insensitive: false,
        };
        let r = read(&h, normalize, false).unwrap();
        let paths: Vec<_> = r.paths.iter().map(|(p, _)| p.clone()).collect();
        assert_eq!(texts(&paths), ["/x/../admin/users", "/admin/users"]);
        assert!(r.paths.iter().all(|(_, folded)| !folded));
        let insensitive = PathReading {
            ambiguous: AmbiguousPaths::Reject,
            case_insensitive: true,
        };
        let h = request("GET", "/ADMIN/users", &[]);
        let r = read(&h, insensitive, false).unwrap();
        let folded: Vec<bool> = r.paths.iter().map(|(_, folded)| *folded).collect();
        assert_eq!(folded, [false, true]);
    }

    #[test]
    fn method_overrides_head_and_forms_are_readings() {
        let read_methods = |method: &str, path: &str, extra: &[(&str, &str)]| {
            let h = request(method, path, extra);
            let readings = read(&h, PathReading::default(), false).unwrap();
            texts(&readings.methods)
        };
        assert_eq!(read_methods("GET", "/x", &[]), ["GET"]);
        assert_eq!(read_methods("HEAD", "/x", &[]), ["HEAD", "GET"]);
        assert_eq!(
            read_methods("POST", "/x", &[("X-HTTP-Method-Override", " delete ")]),
            ["POST", "delete"]
        );
        assert_eq!(
            read_methods(
                "POST",
                "/x",
                &[("x-http-method", "PATCH"), ("x-method-override", "PUT")]
            ),
            ["POST", "PATCH", "PUT"]
        );
        assert_eq!(
            read_methods("POST", "/x?_method=DELETE", &[]),
            ["POST", "DELETE"]
        );
        assert_eq!(
            read_methods("POST", "/x?a=1&%5Fmethod=put", &[]),
            ["POST", "put"]
        );
        assert_eq!(
            read_methods(
                "POST",
                "/x",
                &[("content-type", "application/x-www-form-urlencoded")]
            ),
            ["POST", "PUT", "PATCH", "DELETE"]
        );
        assert_eq!(
            read_methods(
                "POST",
                "/x",
                &[("content-type", "Multipart/Form-Data; boundary=x")]
            ),
            ["POST", "PUT", "PATCH", "DELETE"]
        );
        assert_eq!(
            read_methods("POST", "/x", &[("content-type", "application/json")]),
            ["POST"]
        );
        // Not a method at all: ignored.
        assert_eq!(
            read_methods("POST", "/x", &[("x-http-method-override", "DE LETE\r")]),
            ["POST"]
        );
    }

    #[test]
    fn odd_authorities_are_refused() {
        for (authority, kind) in [
            ("admin.example.com:abc", "bad_port"),
            ("admin.example.com:443:443", "bad_port"),
            ("admin.example.com:99999", "bad_port"),
            ("admin.example.com:", "bad_port"),
            ("admin.example.com..", "empty_label"),
            ("admin..example.com", "empty_label"),
            (".admin.example.com", "empty_label"),
            ("evil@admin.example.com", "userinfo"),
            ("admin.example.com,other", "list"),
            ("admin.example.com%2e", "bad_character"),
            ("admin example.com", "bad_character"),
            ("[::1", "bad_ipv6"),
            ("[::1]x", "bad_ipv6"),
            ("[zz]", "bad_ipv6"),
            ("", "empty"),
            (".", "empty"),
        ] {
            assert_eq!(
                parse_authority(authority.as_bytes()),
                Err(kind),
                "{authority}"
            );
        }
        for (authority, host) in [
            ("admin.example.com", "admin.example.com"),
            ("Admin.Example.com:8443", "Admin.Example.com"),
            ("admin.example.com.", "admin.example.com."),
            ("127.0.0.1:10000", "127.0.0.1"),
            ("[::1]:10000", "[::1]"),
            ("[::1]", "[::1]"),
            ("svc_internal", "svc_internal"),
        ] {
            assert_eq!(
                parse_authority(authority.as_bytes()),
                Ok(host.as_bytes()),
                "{authority}"
            );
        }
    }

    #[test]
    fn forwarded_hosts_are_readings_when_rules_use_hosts() {
        let h = request(
            "GET",
            "/",
            &[
                ("x-forwarded-host", "admin.example.com, other.example.com"),
                (
                    "forwarded",
                    "for=1.2.3.4;host=\"third.example.com\";proto=https",
                ),
            ],
        );
        let hosts = texts(&read(&h, PathReading::default(), true).unwrap().hosts);
        assert_eq!(
            hosts,
            [
                "app.example.com",
                "admin.example.com",
                "other.example.com",
                "third.example.com"
            ]
        );
        assert_eq!(
            texts(&read(&h, PathReading::default(), false).unwrap().hosts),
            ["app.example.com"]
        );
        let h = request(
            "GET",
            "/",
            &[("x-forwarded-host", "evil@admin.example.com")],
        );
        assert_eq!(
            read(&h, PathReading::default(), true),
            Err(Unreadable::InvalidHost("forwarded_host"))
        );
    }
}

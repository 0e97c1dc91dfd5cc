//! The pages a browser sees when a sign-in cannot be finished: what went wrong in words, the
//! reason code, and a link to try again (the page the user wanted: opening it starts a new
//! sign-in, so nothing loops by itself).

use crate::response::LocalReply;

/// Words for a reason code (never token content).
fn explain(reason: &str) -> &'static str {
    let code = reason.split(':').next().unwrap_or(reason);
    match code {
        "state_cookie_missing" => "This browser did not start the sign-in, or it took too long: its sign-in cookie is missing.",
        "state_cookie_repeated" => "The browser sent more than one sign-in cookie.",
        "state_cookie_malformed" | "state_cookie_altered" => "The sign-in cookie was altered.",
        "state_cookie_expired" => "The sign-in took too long.",
        "state_missing" | "state_mismatch" => "The answer from the identity provider does not belong to the sign-in this browser started.",
        "state_replayed" => "This sign-in was already completed once; it cannot be used again.",
        "state_store_unavailable" => "The gateway cannot check the sign-in right now.",
        "provider_error" => "The identity provider did not sign you in.",
        "code_missing" => "The identity provider sent no authorization code.",
        "callback_method_not_get" | "callback_query_unreadable" => "The sign-in answer cannot be read.",
        "client_assertion_unsigned" => "The gateway cannot authenticate to the identity provider.",
        "token_endpoint_failed" | "token_endpoint_unavailable" | "token_answer_malformed" => "The identity provider could not complete the sign-in.",
        "id_token_invalid" | "nonce_mismatch" => "The identity provider's answer could not be verified.",
        "level_not_met" => "The sign-in did not use the method this page needs.",
        "max_age_exceeded" => "The sign-in was not recent enough for this page.",
        "session_cookie_too_large" => "The session is too large to keep in a cookie.",
        "no_randomness" => "The gateway cannot start a sign-in right now.",
        _ => "The sign-in could not be completed.",
    }
}

fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The "Sign-in failed" page: `status`, the reason's words and code, a link to `retry`.
pub fn failed(status: u32, reason: &str, retry: &str) -> LocalReply {
    let retry = super::state::same_origin_path(retry);
    let body = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Sign-in failed</title></head>\n\
         <body style=\"font-family:sans-serif;max-width:40em;margin:3em auto\">\n\
         <h1>Sign-in failed</h1>\n<p>{}</p>\n<p>Reason: <code>{}</code></p>\n\
         <p><a href=\"{}\">Try again</a></p>\n</body></html>\n",
        explain(reason),
        html_escape(reason),
        html_escape(&retry),
    );
    LocalReply {
        status,
        headers: vec![
            ("content-type".into(), "text/html; charset=utf-8".into()),
            ("cache-control".into(), "no-store".into()),
        ],
        body: body.into_bytes(),
        details: "mfa_gate_sign_in_failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_the_reason_and_escapes_the_retry_link() {
        let page = failed(401, "state_mismatch", "/a?b=<x>");
        let body = String::from_utf8(page.body).unwrap();
        assert!(body.contains("<title>Sign-in failed</title>"));
        assert!(body.contains("does not belong to the sign-in"));
        assert!(body.contains("href=\"/a?b=&lt;x&gt;\""));
        let page = failed(401, "x", "//evil.example");
        assert!(String::from_utf8(page.body).unwrap().contains("href=\"/\""));
    }
}

#!/usr/bin/env python3
"""A stand-in gateway and IdP that run the sign-in code flow, for checking step_up.py's own
code-flow path (scenario tampered-state, the callback and cookie checks of
push-then-passkey) before the filter's callback is in the shipped demo.

It imitates only what step_up.py walks through, the way the filter's callback is specified:

  gateway  /admin/users           a push session (or none) gets a 302 to the IdP's /authorize
                                  with response_type=code, state, nonce and PKCE; the
                                  callback's session gets the demo app's JSON
           /.mfa-gate/callback    the right state and code: Set-Cookie mfa_session (HttpOnly,
                                  Secure, SameSite=Lax) and a 302 to /admin/users; otherwise
                                  400 "Sign-in failed", no cookie
  IdP      /login/push            a push session cookie, then a 302 to the gateway
           /authorize             "Re-authenticate with your passkey", a link to the approve step
           /authorize/approve     a 302 to the gateway's callback with a code and the state

`--accept-any-state`: the callback takes any state (a broken gateway), which scenario
tampered-state must catch.

Prints `gateway=<url> idp=<url>` on its first line, then serves until killed (SIGTERM).
"""

from __future__ import annotations

import html
import json
import secrets
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATE = secrets.token_urlsafe(16)
CODE = secrets.token_urlsafe(16)
GOOD_SESSION = "passkey-" + secrets.token_urlsafe(8)
ACCEPT_ANY_STATE = "--accept-any-state" in sys.argv[1:]


def serve(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:  # noqa: ANN002
        pass

    def answer(
        self, status: int, body: str = "", headers: dict[str, str] | None = None, kind: str = "text/html"
    ) -> None:
        data = body.encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def parts(self) -> tuple[str, dict[str, str]]:
        url = urllib.parse.urlsplit(self.path)
        return url.path, dict(urllib.parse.parse_qsl(url.query))

    def session(self) -> str | None:
        for part in (self.headers.get("cookie") or "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == "mfa_session":
                return value
        return None


class Gateway(Handler):
    def do_GET(self) -> None:  # noqa: N802
        path, query = self.parts()
        if path == "/admin/users":
            if self.session() == GOOD_SESSION:
                app = {
                    "app": "mfa-gate demo app",
                    "path": path,
                    "headers": {
                        "x-mfa-gate-level": "phishing_resistant",
                        "x-mfa-gate-methods": "pwd,webauthn",
                        "x-mfa-gate-subject": "kim@example.com",
                    },
                }
                return self.answer(200, json.dumps(app), kind="application/json")
            authorize = f"{IDP}/authorize?" + urllib.parse.urlencode(
                {
                    "response_type": "code",
                    "client_id": "mfa-gate-demo",
                    "redirect_uri": f"{GATEWAY}/.mfa-gate/callback",
                    "scope": "openid",
                    "acr_values": "phr",
                    "max_age": "3600",
                    "prompt": "login",
                    "state": STATE,
                    "nonce": secrets.token_urlsafe(8),
                    "code_challenge": secrets.token_urlsafe(32),
                    "code_challenge_method": "S256",
                }
            )
            return self.answer(302, headers={"location": authorize})
        if path == "/.mfa-gate/callback":
            if (ACCEPT_ANY_STATE or query.get("state") == STATE) and query.get("code") == CODE:
                cookie = f"mfa_session={GOOD_SESSION}; Path=/; HttpOnly; Secure; SameSite=Lax"
                return self.answer(302, headers={"location": "/admin/users", "set-cookie": cookie})
            page = (
                "<!doctype html><html><head><title>Sign-in failed</title></head>"
                "<body><h1>Sign-in failed</h1></body></html>"
            )
            return self.answer(400, page)
        return self.answer(404, "not found")


class Idp(Handler):
    def do_GET(self) -> None:  # noqa: N802
        path, query = self.parts()
        if path == "/login/push":
            target = GATEWAY + query.get("return_to", "/admin/users")
            cookie = "mfa_session=push; Path=/; HttpOnly; SameSite=Lax"
            return self.answer(302, headers={"location": target, "set-cookie": cookie})
        if path == "/authorize":
            approve = "/authorize/approve?" + urllib.parse.urlencode(
                {"redirect_uri": query.get("redirect_uri", ""), "state": query.get("state", "")}
            )
            rows = "".join(
                f"<tr><th>{name}</th><td>{html.escape(query.get(name, '(not given)'))}</td></tr>"
                for name in ("acr_values", "max_age", "prompt", "state")
            )
            page = (
                "<!doctype html><html><head><title>fake IdP</title></head><body>"
                f"<h1>Re-authenticate with your passkey</h1><table>{rows}</table>"
                f'<p><a href="{html.escape(approve)}">Use my passkey</a></p></body></html>'
            )
            return self.answer(200, page)
        if path == "/authorize/approve":
            answer = urllib.parse.urlencode({"code": CODE, "state": query.get("state", "")})
            target = query.get("redirect_uri", "") + "?" + answer
            return self.answer(302, headers={"location": target})
        return self.answer(404, "not found")


gateway_server = serve(Gateway)
idp_server = serve(Idp)
GATEWAY = f"http://127.0.0.1:{gateway_server.server_address[1]}"
IDP = f"http://127.0.0.1:{idp_server.server_address[1]}"

if __name__ == "__main__":
    print(f"gateway={GATEWAY} idp={IDP}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        sys.exit(0)

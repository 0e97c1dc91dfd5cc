#!/usr/bin/env python3
"""The demo's step-up in a real browser: headless Chromium driven by Selenium 4.

Walks the demo (`make run`: envoy/envoy.yaml with mfa-gate in front of `mfa-gate demo`) the
way a user does, following the links and redirects the pages give, and asserts what the user
sees: page text, cookies, the final URL. Every page reached is saved as a screenshot
(`NN-name.png`) in the artefact folder, beside `result.json`, which says which sign-in flow
the gateway ran and which scenarios ran:

  legacy  the gateway's 302 goes to the IdP's /authorize with `state` = the page wanted; the
          IdP's "Use my passkey" signs in and sends the browser straight back;
  code    the gateway's 302 carries `response_type=code` with a nonce or PKCE's
          `code_challenge` (the legacy one has response_type=code alone); the IdP's
          approve link redirects to the gateway's `/.mfa-gate/callback`, which sets the
          session cookie.

Scenarios (`--scenario`):
  push-then-passkey  sign in with push, open /admin/users, re-authenticate with the passkey
                     on the IdP's page, be let in (either flow);
  push-stays-out     a push session opens /admin/users, is sent to the IdP, and is never let
                     in while it does not re-authenticate;
  tampered-state     (code flow only) the callback with one character of `state` changed:
                     "Sign-in failed", no new session cookie, still not let in. On the
                     legacy flow it records that it did not run (result.json: "ran": false);
                     the Rust runner fails when the flow is `code` and it did not run.

Exit code 0 only if every assertion held; a failure prints the step, the URL and the page
text. Run by tests/envoy/tests/browser.rs; by hand:

  .venv/bin/python tests/browser/step_up.py --gateway http://127.0.0.1:10000 \\
      --idp http://127.0.0.1:10001 --out target/browser/push-then-passkey
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM = "/usr/bin/chromium"
SESSION_COOKIE = "mfa_session"
APP_MARKER = '"app": "mfa-gate demo app"'
REAUTH_HEADING = "Re-authenticate with your passkey"
PASSKEY_LINK = "Use my passkey"
SIGN_IN_FAILED = "Sign-in failed"
CALLBACK_PATH = "/.mfa-gate/callback"
PAGE_TIMEOUT_SECS = 15
# Characters of page text quoted in a failure (the demo's pages are short).
QUOTED_TEXT = 2000


class StepFailed(Exception):
    """An assertion of one step did not hold."""


class Walk:
    """One browser (a fresh temporary profile) and the artefact folder its pages go to."""

    def __init__(self, gateway: str, idp: str, out: Path) -> None:
        self.gateway = gateway.rstrip("/")
        self.idp = idp.rstrip("/")
        self.out = out
        self.step = "start"
        self.shots: list[str] = []
        self.profile = tempfile.mkdtemp(prefix="mfa-gate-browser-")
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in (
            "--headless=new",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            f"--user-data-dir={self.profile}",
            "--window-size=1000,760",
            "--no-first-run",
            "--disable-background-networking",
        ):
            options.add_argument(arg)
        # The document responses (status, location) of each navigation, read from the log.
        options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.driver.set_page_load_timeout(PAGE_TIMEOUT_SECS)

    def close(self) -> None:
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    # -- what the user does ------------------------------------------------------------

    def open(self, step: str, url: str) -> list[dict]:
        """Navigates to `url` as typed in the address bar; returns the document responses
        of that navigation (each redirect hop, then the page), oldest first."""
        self.step = step
        self.driver.get_log("performance")  # drop what came before
        self.driver.get(url)
        return self.document_hops()

    def click_link(self, step: str, text: str) -> list[dict]:
        self.step = step
        self.driver.get_log("performance")
        try:
            link = self.driver.find_element(By.LINK_TEXT, text)
        except NoSuchElementException as e:
            raise StepFailed(f'no link "{text}" on the page') from e
        before = self.driver.current_url
        link.click()
        deadline = time.monotonic() + PAGE_TIMEOUT_SECS
        while self.driver.current_url == before and time.monotonic() < deadline:
            time.sleep(0.05)
        self.wait_loaded()
        return self.document_hops()

    def wait_loaded(self) -> None:
        deadline = time.monotonic() + PAGE_TIMEOUT_SECS
        while time.monotonic() < deadline:
            if self.driver.execute_script("return document.readyState") == "complete":
                return
            time.sleep(0.05)
        raise StepFailed("the page did not finish loading")

    def screenshot(self, name: str) -> None:
        file = f"{len(self.shots) + 1:02d}-{name}.png"
        if not self.driver.save_screenshot(str(self.out / file)):
            raise StepFailed(f"could not save the screenshot {file}")
        self.shots.append(file)

    # -- what the user sees ------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.driver.current_url

    def text(self) -> str:
        try:
            return self.driver.find_element(By.TAG_NAME, "body").text
        except NoSuchElementException:
            return ""

    def cookie(self, name: str) -> dict | None:
        """The cookie the browser holds for the current page's host (ports share cookies)."""
        return self.driver.get_cookie(name)

    def document_hops(self) -> list[dict]:
        """Main-document responses since the last read of the performance log: for each, the
        URL, status and Location (redirects appear as `redirectResponse` of the next request)."""
        hops = []
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            params = message.get("params", {})
            if message.get("method") == "Network.requestWillBeSent" and params.get("type") == "Document":
                redirect = params.get("redirectResponse")
                if redirect:
                    hops.append(hop(redirect))
            elif message.get("method") == "Network.responseReceived" and params.get("type") == "Document":
                hops.append(hop(params["response"]))
        return hops

    def expect(self, condition: bool, what: str) -> None:
        if not condition:
            raise StepFailed(what)

    def expect_idp_page(self) -> dict[str, list[str]]:
        """The IdP's re-authenticate page, reached through the gateway's redirect; returns
        the query the gateway put on /authorize."""
        self.expect(
            self.url.startswith(f"{self.idp}/authorize?"),
            f"expected the IdP's {self.idp}/authorize, got {self.url}",
        )
        self.expect(REAUTH_HEADING in self.text(), f'no "{REAUTH_HEADING}" on the page')
        self.expect(APP_MARKER not in self.page_source(), "the app's JSON on the IdP page")
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.url).query)
        acr = query.get("acr_values")
        self.expect(acr == ["phr"], f"acr_values=phr in the URL, got {acr}")
        self.expect(
            row(self.driver, "acr_values") == "phr",
            f"the page's acr_values row shows {row(self.driver, 'acr_values')!r}, not phr",
        )
        return query

    def expect_not_let_in(self) -> None:
        self.expect(APP_MARKER not in self.page_source(), f"let into the app at {self.url}")
        self.expect(
            not self.url.startswith(f"{self.gateway}/admin/users") or REAUTH_HEADING in self.text(),
            f"the gateway served {self.url} without a re-authentication",
        )

    def page_source(self) -> str:
        return self.driver.page_source


def hop(response: dict) -> dict:
    headers = {k.lower(): v for k, v in response.get("headers", {}).items()}
    return {"url": response.get("url"), "status": response.get("status"), "location": headers.get("location")}


def sends_to_authorize(answer: dict, idp: str) -> bool:
    """A 302 to the IdP's /authorize."""
    return answer["status"] == 302 and (answer["location"] or "").startswith(f"{idp}/authorize?")


def row(driver: webdriver.Chrome, name: str) -> str | None:
    """The value cell of the IdP page's table row `name`."""
    for tr in driver.find_elements(By.TAG_NAME, "tr"):
        cells = tr.find_elements(By.XPATH, "./th|./td")
        if len(cells) == 2 and cells[0].text.strip() == name:
            return cells[1].text.strip()
    return None


def flow_of(query: dict[str, list[str]]) -> str:
    """`code` when the gateway's redirect to /authorize starts a sign-in the gateway finishes
    itself: response_type=code with PKCE's code_challenge or a nonce. (The legacy redirect
    carries response_type=code too, but with the return path as `state` and neither.)"""
    code = query.get("response_type") == ["code"]
    return "code" if code and ("code_challenge" in query or "nonce" in query) else "legacy"


def app_json(walk: Walk) -> dict:
    """The demo app's JSON as the browser shows it."""
    # Chromium shows a JSON document in a <pre> (beside its own "Pretty-print" control).
    pre = walk.driver.find_elements(By.TAG_NAME, "pre")
    text = pre[0].text if pre else walk.text()
    walk.expect(APP_MARKER in walk.page_source(), f"not the demo app's JSON at {walk.url}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise StepFailed(f"the app's page is not JSON: {e}") from e


def sign_in_with_push(walk: Walk) -> dict[str, list[str]]:
    """Signs in at the IdP with push and asks for /admin/users: the gateway must send the
    browser to the IdP's re-authenticate page. Returns the /authorize query."""
    hops = walk.open("sign in with push", f"{walk.idp}/login/push?return_to=/admin/users")
    walk.step = "the gateway sends the push session to the IdP"
    gateway_hop = [h for h in hops if (h["url"] or "").startswith(f"{walk.gateway}/admin/users")]
    walk.expect(bool(gateway_hop), f"the browser never asked the gateway for /admin/users: {hops}")
    walk.expect(
        sends_to_authorize(gateway_hop[0], walk.idp),
        f"the gateway's answer to /admin/users is not a 302 to the IdP's /authorize: {gateway_hop[0]}",
    )
    walk.expect(walk.cookie(SESSION_COOKIE) is not None, f"no {SESSION_COOKIE} cookie after the push sign-in")
    query = walk.expect_idp_page()
    walk.screenshot("reauthenticate")
    return query


def push_then_passkey(walk: Walk) -> dict:
    """Scenario (a): push, then the passkey on the IdP's page, then the app lets you in."""
    query = sign_in_with_push(walk)
    flow = flow_of(query)
    hops = walk.click_link("use my passkey", PASSKEY_LINK)
    walk.step = "back on the gateway at /admin/users"
    admin = f"{walk.gateway}/admin/users"
    walk.expect(walk.url == admin, f"expected {admin}, got {walk.url}")
    walk.expect(hops and hops[-1]["status"] == 200, f"the last answer is not 200: {hops}")
    app = app_json(walk)
    walk.screenshot("app")
    walk.expect(app.get("app") == "mfa-gate demo app", f"app = {app.get('app')!r}")
    headers = app.get("headers", {})
    # What mfa-gate told the app: a phishing-resistant sign-in by the passkey user.
    for name, holds in (
        ("x-mfa-gate-level", lambda v: v == "phishing_resistant"),
        ("x-mfa-gate-subject", lambda v: v == "kim@example.com"),
        ("x-mfa-gate-methods", lambda v: "webauthn" in (v or "").split(",")),
    ):
        walk.expect(holds(headers.get(name)), f"{name} = {headers.get(name)!r} in the app's headers")
    cookie = walk.cookie(SESSION_COOKIE)
    walk.expect(cookie is not None, f"no {SESSION_COOKIE} cookie once let in")
    if flow == "code":
        walk.step = "the gateway's session cookie"
        walk.expect(
            any((h["url"] or "").startswith(f"{walk.gateway}{CALLBACK_PATH}") for h in hops),
            f"the code flow did not pass the gateway's {CALLBACK_PATH}: {hops}",
        )
        walk.expect(cookie.get("httpOnly") is True, f"{SESSION_COOKIE} is not HttpOnly")
        walk.expect(cookie.get("secure") is True, f"{SESSION_COOKIE} is not Secure")
        same_site = cookie.get("sameSite")
        walk.expect(same_site == "Lax", f"{SESSION_COOKIE} SameSite = {same_site!r}")
    return {"flow": flow, "ran": True}


def push_stays_out(walk: Walk) -> dict:
    """Scenario (b): a push session never gets /admin/users without the passkey."""
    query = sign_in_with_push(walk)
    walk.expect_not_let_in()
    hops = walk.open("a push session opens /admin/users again", f"{walk.gateway}/admin/users")
    walk.expect(
        bool(hops) and sends_to_authorize(hops[0], walk.idp),
        f"the gateway did not send the push session to the IdP: {hops}",
    )
    walk.expect_idp_page()
    walk.expect_not_let_in()
    walk.screenshot("still-reauthenticate")
    return {"flow": flow_of(query), "ran": True}


def tampered_state(walk: Walk) -> dict:
    """Scenario (c), the code flow only: a callback whose `state` was changed by one
    character is refused ("Sign-in failed"), sets no session cookie and lets nobody in."""
    query = sign_in_with_push(walk)
    flow = flow_of(query)
    if flow != "code":
        print("tampered-state: not run: the gateway's redirect has no nonce or code_challenge (legacy flow)")
        return {"flow": flow, "ran": False}
    walk.step = "take the approve link"
    try:
        approve = walk.driver.find_element(By.LINK_TEXT, PASSKEY_LINK).get_attribute("href")
    except NoSuchElementException as e:
        raise StepFailed(f'no link "{PASSKEY_LINK}" on the IdP page') from e
    walk.expect(bool(approve), "the passkey link has no href")
    callback = redirect_target(approve, walk.driver.get_cookies())
    walk.expect(
        callback.startswith(f"{walk.gateway}{CALLBACK_PATH}?"),
        f"the approve link does not redirect to the gateway's {CALLBACK_PATH}: {callback}",
    )
    tampered = tamper_state(callback)
    walk.expect(tampered != callback, "state not changed")
    before = walk.cookie(SESSION_COOKIE)
    hops = walk.open("open the callback with a tampered state", tampered)
    walk.expect(SIGN_IN_FAILED in walk.driver.title, f'title {walk.driver.title!r}, not "{SIGN_IN_FAILED}"')
    walk.expect(hops and hops[-1]["status"] in (400, 401), f"the callback's status is not 400/401: {hops}")
    walk.screenshot("sign-in-failed")
    after = walk.cookie(SESSION_COOKIE)
    walk.expect(after == before, f"the refused callback changed the {SESSION_COOKIE} cookie")
    walk.open("a later visit to /admin/users", f"{walk.gateway}/admin/users")
    walk.expect_not_let_in()
    walk.expect_idp_page()
    walk.screenshot("still-reauthenticate")
    return {"flow": flow, "ran": True}


def redirect_target(url: str, cookies: list[dict]) -> str:
    """The Location `url` answers with, asked with the browser's cookies, not followed."""

    class NoFollow(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):  # noqa: ANN002, ANN003
            return None

    header = "; ".join(f"{c['name']}={c['value']}" for c in cookies)
    request = urllib.request.Request(url, headers={"cookie": header, "accept": "text/html"})
    opener = urllib.request.build_opener(NoFollow)
    try:
        with opener.open(request, timeout=PAGE_TIMEOUT_SECS) as answer:
            raise StepFailed(f"{url} answered {answer.status}, not a redirect")
    except urllib.error.HTTPError as e:
        if e.code in (301, 302, 303, 307) and e.headers.get("location"):
            return urllib.parse.urljoin(url, e.headers["location"])
        raise StepFailed(f"{url} answered {e.code}, not a redirect") from e


def tamper_state(url: str) -> str:
    """`url` with one character of its `state` parameter changed."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    changed = []
    for name, value in query:
        if name == "state" and value:
            i = len(value) // 2
            value = value[:i] + ("A" if value[i] != "A" else "B") + value[i + 1 :]
        changed.append((name, value))
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(changed)))


SCENARIOS = {
    "push-then-passkey": push_then_passkey,
    "push-stays-out": push_stays_out,
    "tampered-state": tampered_state,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gateway", required=True, help="the gateway's URL, e.g. http://127.0.0.1:10000")
    parser.add_argument("--idp", required=True, help="the demo IdP's URL, e.g. http://127.0.0.1:10001")
    parser.add_argument("--out", required=True, type=Path, help="artefact folder (screenshots, result.json)")
    parser.add_argument("--scenario", required=True, choices=sorted(SCENARIOS))
    args = parser.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    for old in args.out.glob("*.png"):
        old.unlink()
    (args.out / "result.json").unlink(missing_ok=True)

    walk = Walk(args.gateway, args.idp, args.out)
    try:
        result = SCENARIOS[args.scenario](walk)
    except (StepFailed, WebDriverException) as e:
        print(f"{args.scenario}: FAILED at step: {walk.step}", file=sys.stderr)
        print(f"  {e}", file=sys.stderr)
        try:
            print(f"  URL: {walk.url}", file=sys.stderr)
            print(f"  page text:\n{walk.text()[:QUOTED_TEXT]}", file=sys.stderr)
            walk.screenshot("failure")
        except WebDriverException:
            pass
        return 1
    finally:
        walk.close()
    result.update({"scenario": args.scenario, "screenshots": walk.shots})
    (args.out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"{args.scenario}: ok ({result['flow']} flow; screenshots: {', '.join(walk.shots) or 'none'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

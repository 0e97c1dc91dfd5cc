#!/usr/bin/env python3
"""Writes the committed seed corpora of the fuzz targets (fuzz/seeds/<target>/) and the
fixed JWKS the token targets verify against (fuzz/fixtures/envoy_jwks.json), from
shared/vectors and from strings the repository's own configurations use.

Run from the repository root when the vectors change: python3 fuzz/make_seeds.py
Seeds are small by design (a few KB a target); libFuzzer grows its working corpus in
fuzz/corpus/<target>/, which is not committed."""

import base64
import hashlib
import json
import os
import re
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VECTORS = os.environ.get("MFA_GATE_VECTORS", os.path.join(ROOT, "..", "shared", "vectors"))
if not os.path.isdir(VECTORS):
    VECTORS = "/work/shared/vectors"
SEEDS = os.path.join(ROOT, "fuzz", "seeds")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jws(header: dict, payload: dict, sig: bytes = b"\x00" * 32) -> bytes:
    return ".".join(
        [b64(json.dumps(header).encode()), b64(json.dumps(payload).encode()), b64(sig)]
    ).encode()


def put(target: str, name: str, data: bytes) -> None:
    folder = os.path.join(SEEDS, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def vector(path: str):
    with open(os.path.join(VECTORS, path)) as f:
        return json.load(f)


envoy = vector("envoy/envoy_jwt_authn_test_tokens.json")
cookbook = vector("rfc/jose_cookbook_jws.json")

# The fixed key set of the token targets.
with open(os.path.join(ROOT, "fuzz", "fixtures", "envoy_jwks.json"), "w") as f:
    json.dump(envoy["jwks"], f, indent=1)
    f.write("\n")

# token_verify: Envoy's test tokens (valid signature, expired, wrong aud, unknown kid...)
# and cookbook JWS compact forms.
for name, token in envoy["tokens"].items():
    put("token_verify", name, (token["jwt"] if isinstance(token, dict) else token).encode())
put("token_verify", "hs256_shape", jws({"alg": "HS256", "typ": "JWT"},
    {"iss": "https://example.com", "sub": "u", "exp": 2000000000, "aud": "mfa-gate"}))
put("token_verify", "events_claim", jws({"alg": "RS256", "kid": "x"}, {"events": {}}))

# jwks_parse: Envoy's JWKS, the cookbook's and Wycheproof's JWKs.
put("jwks_parse", "envoy", json.dumps(envoy["jwks"]).encode())
jwks_text = json.dumps(cookbook)
for i, key in enumerate(re.findall(r'\{[^{}]*"kty"[^{}]*\}', jwks_text)[:8]):
    put("jwks_parse", f"cookbook_{i}", json.dumps({"keys": [json.loads(key)]}).encode())
wjwk = vector("wycheproof/json_web_key_test.json")
count = 0
for group in wjwk.get("testGroups", []):
    for test in group.get("tests", []):
        jwk = test.get("private") or test.get("public") or test.get("jwk")
        if isinstance(jwk, dict) and count < 8:
            put("jwks_parse", f"wycheproof_{count}", json.dumps({"keys": [jwk]}).encode())
            count += 1
put("jwks_parse", "empty", b'{"keys":[]}')
put("jwks_parse", "oct", b'{"keys":[{"kty":"oct","k":"c2VjcmV0","alg":"HS256"}]}')

# config_parse: the plugin configurations embedded in envoy/*.yaml (JSON after `value: |`).
configs = 0
for dirpath, _, files in os.walk(os.path.join(ROOT, "envoy")):
    for fname in sorted(files):
        if not fname.endswith(".yaml"):
            continue
        text = open(os.path.join(dirpath, fname)).read()
        for block in re.findall(r"value: \|\n((?:[ ]+.*\n|\n)+)", text):
            lines = block.splitlines()
            indent = len(lines[0]) - len(lines[0].lstrip())
            kept = []
            for line in lines:
                if line.strip() and len(line) - len(line.lstrip()) < indent:
                    break
                kept.append(line[indent:])
            body = "\n".join(kept).strip()
            try:
                json.loads(body)
            except ValueError:
                continue
            configs += 1
            put("config_parse", f"{fname}_{configs}", body.encode())
put("config_parse", "minimal", b'{"issuers":[]}')

# jwt_authn_metadata: a serialized envoy.config.core.v3.Metadata holding
# filter_metadata["envoy.filters.http.jwt_authn"]["payload"] = Struct{...}.
def varint(n: int) -> bytes:
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(num: int, wire: int, data: bytes) -> bytes:
    if wire == 2:
        return varint(num << 3 | 2) + varint(len(data)) + data
    if wire == 1:
        return varint(num << 3 | 1) + data
    return varint(num << 3 | wire) + data


def pb_value(v) -> bytes:
    if v is None:
        return field(1, 0, varint(0))
    if isinstance(v, bool):
        return field(4, 0, varint(int(v)))
    if isinstance(v, (int, float)):
        return field(2, 1, struct.pack("<d", float(v)))
    if isinstance(v, str):
        return field(3, 2, v.encode())
    if isinstance(v, dict):
        return field(5, 2, pb_struct(v))
    if isinstance(v, list):
        return field(6, 2, b"".join(field(1, 2, pb_value(x)) for x in v))
    raise TypeError(v)


def pb_struct(d: dict) -> bytes:
    return b"".join(
        field(1, 2, field(1, 2, k.encode()) + field(2, 2, pb_value(v))) for k, v in d.items()
    )


def metadata(namespace: str, key: str, claims: dict) -> bytes:
    """The target's input: a byte choosing the payload key (0: `payload`), then the
    serialized Metadata."""
    inner = pb_struct({key: claims})
    return b"\x00" + field(1, 2, field(1, 2, namespace.encode()) + field(2, 2, inner))


NS = "envoy.filters.http.jwt_authn"
for name, path in [("okta", "claims/okta_id_token_amr_sms_mfa_pwd.json"),
                   ("auth0", "claims/auth0_id_token_with_and_without_mfa.json")]:
    data = vector(path)
    claims = None
    # find the first dict holding "amr" or "sub" as the claims
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "sub" in node or "amr" in node:
                claims = node
                break
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    if claims is not None:
        put("jwt_authn_metadata", name, metadata(NS, "payload", claims))
put("jwt_authn_metadata", "nested", metadata(NS, "payload",
    {"sub": "u", "amr": ["hwk", "pop"], "n": 1.5, "b": True, "z": None, "o": {"a": [1, {}]}}))
put("jwt_authn_metadata", "other_ns", metadata("other", "payload", {"sub": "u"}))
put("jwt_authn_metadata", "empty", b"\x00")

# pairs: the proxy-wasm header map encoding.
def pairs(items) -> bytes:
    out = struct.pack("<I", len(items))
    for k, v in items:
        out += struct.pack("<II", len(k), len(v))
    for k, v in items:
        out += k + b"\0" + v + b"\0"
    return out


put("pairs", "request", pairs([(b":method", b"GET"), (b":path", b"/admin"),
    (b"authorization", b"Bearer x.y.z"), (b"cookie", b"a=b; c=d")]))
put("pairs", "empty_map", pairs([]))
put("pairs", "empty_value", pairs([(b"x", b"")]))

# events: SET and logout token shapes (unsigned: the parser is reached up to the signature).
now = 1800000000
set_payload = {"iss": "https://idp.example.com", "aud": "mfa-gate", "iat": now, "jti": "j1",
    "sub_id": {"format": "opaque", "id": "s1"},
    "events": {"https://schemas.openid.net/secevent/caep/event-type/session-revoked": {
        "subject": {"format": "complex", "session": {"format": "opaque", "id": "sid"}}}}}
put("events", "set", b"\x00" + jws({"alg": "HS256", "typ": "secevent+jwt"}, set_payload))
logout = {"iss": "https://idp.example.com", "aud": "mfa-gate", "iat": now, "exp": now + 60,
    "jti": "j2", "sid": "sid-1",
    "events": {"http://schemas.openid.net/event/backchannel-logout": {}}}
put("events", "logout", b"\x01" + jws({"alg": "HS256", "typ": "logout+jwt"}, logout))
# Bit 2 set: the target re-signs them with its HMAC secret.
put("events", "set_resigned", b"\x04" + jws({"alg": "HS256", "typ": "secevent+jwt"}, set_payload))
put("events", "logout_resigned", b"\x05" + jws({"alg": "HS256", "typ": "logout+jwt"}, logout))
put("events", "logout_form", b"\x02logout_token=" + jws({"alg": "HS256"}, logout))
put("events", "poll", b"\x03" + json.dumps({"sets": {"j1": jws({"alg": "HS256"}, set_payload).decode()},
    "moreAvailable": False}).encode())

# dpop: a proof shape with an EC jwk.
proof_header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": {"kty": "EC", "crv": "P-256",
    "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
    "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"}}
proof_payload = {"jti": "-BwC3ESc6acc2lTc", "htm": "GET", "htu": "https://api.example.com/r",
    "iat": now, "ath": b64(hashlib.sha256(b"token").digest())}
put("dpop", "proof", jws(proof_header, proof_payload, b"\x01" * 64))
put("dpop", "rsa", jws({"typ": "dpop+jwt", "alg": "RS256", "jwk": envoy["jwks"]["keys"][0]},
    proof_payload, b"\x01" * 256))

# rls_answer: RateLimitResponse (overall_code=1, statuses[{code, current_limit, remaining,
# duration_until_reset}]).
status = field(1, 0, varint(2)) + field(2, 2, field(1, 0, varint(5)) + field(2, 0, varint(1))) \
    + field(3, 0, varint(0)) + field(4, 2, field(1, 0, varint(30)) + field(2, 0, varint(5)))
put("rls_answer", "over", field(1, 0, varint(2)) + field(2, 2, status))
put("rls_answer", "ok", field(1, 0, varint(1)) + field(2, 2, field(1, 0, varint(1)) + field(3, 0, varint(4))))
put("rls_answer", "empty", b"")

# introspection: RFC 7662 answers.
put("introspection", "active", json.dumps({"active": True, "iss": "https://idp.example.com",
    "aud": ["mfa-gate"], "sub": "u", "exp": now + 300, "iat": now, "amr": ["hwk"],
    "acr": "phr", "client_id": "c", "scope": "a b"}).encode())
put("introspection", "inactive", b'{"active":false}')

# sign_in_state: a cookie made by the filter's own format (v1.<payload>.<mac>), whose
# MAC is wrong unless the target's key signs it; the target also round-trips its input.
payload = b64(json.dumps({"s": "A" * 22, "r": "/admin?x=1", "l": "phishing_resistant",
    "a": "phr", "m": 0, "t": now}).encode())
put("sign_in_state", "cookie", f"v1.{payload}.{b64(b'0' * 32)}".encode())
put("sign_in_state", "garbage", b"v1..")

print("seeds written under", SEEDS, file=sys.stderr)

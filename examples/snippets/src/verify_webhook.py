"""The receiving end of httpDestination(url, { secret }) in Python 3, standard library only.

WEBHOOK_SECRETS=new-secret,old-secret PORT=8080 python3 verify_webhook.py
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SIGNATURE_HEADER = "fc-async-signature"


def check_signature(raw_body: bytes, header: str | None, secrets: list[str], tolerance: float = 300,
                    now: float | None = None) -> str | None:
    """None when the header `t=<unix seconds>,v1=<hex>[,v1=<hex>...]` holds a v1 that is the
    HMAC-SHA256, keyed with any of the secrets (UTF-8), of the bytes `<t>.<raw body>`, and t is
    within `tolerance` seconds of now; else the reason, as checkDestinationSignature names it."""
    if header is None or header.strip() == "":
        return "missing_header"
    t, signatures = None, []
    for item in header.split(","):
        if item.find("=") <= 0:
            return "malformed_header"
        key, _, value = (part.strip() for part in item.partition("="))
        if key == "t":
            if t is not None or not re.fullmatch(r"[0-9]{1,12}", value):
                return "malformed_header"
            t = int(value)
        elif key == "v1" and re.fullmatch(r"[0-9a-fA-F]{64}", value):
            signatures.append(bytes.fromhex(value))
        # Any other key (or a v1 that is not 64 hex digits) is skipped: room for future schemes.
    if t is None:
        return "malformed_header"
    if not signatures:
        return "no_signature"
    if abs((time.time() if now is None else now) - t) > tolerance:
        return "timestamp_out_of_tolerance"
    signed = f"{t}.".encode() + raw_body
    expected = [hmac.new(s.encode(), signed, hashlib.sha256).digest() for s in secrets]
    # Compare every pair in constant time, so timing does not reveal which one matched.
    match = [hmac.compare_digest(got, want) for got in signatures for want in expected]
    return None if any(match) else "signature_mismatch"


SECRETS = [s for s in os.environ.get("WEBHOOK_SECRETS", "").split(",") if s]
# The request ids taken: in production a table keyed on it, or Redis `SET id 1 NX`.
taken: set[str] = set()


def handle(record: dict) -> None:
    context = record["requestContext"]
    print(context["condition"] or "succeeded", context["requestId"], flush=True)


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        # Every post has a Content-Length (never chunked) and an uncompressed body.
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        reason = check_signature(raw, self.headers.get(SIGNATURE_HEADER), SECRETS)
        if reason is not None:
            # A 4xx is never retried: the record is dropped (a forgery is meant to be).
            self.log_message("refused: %s", reason)
            self.answer(401)
            return
        record = json.loads(raw)  # UTF-8 JSON, checked on the raw bytes first
        request_id = record["requestContext"]["requestId"]
        if request_id not in taken:  # at least once: a copy already taken changes nothing
            try:
                handle(record)
            except Exception:
                self.answer(500)  # 5xx, 408, 429 and timeouts are retried, same record, signed anew
                return
            taken.add(request_id)
        self.answer(204)  # any 2xx: taken (a copy too, or it is sent again)

    def answer(self, status: int) -> None:
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()


if __name__ == "__main__":
    if not SECRETS:
        raise SystemExit("set WEBHOOK_SECRETS (comma-separated: the new secret and the old one while rotating)")
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("PORT", "8080"))), Receiver)
    print("listening", server.server_address[1], flush=True)
    server.serve_forever()

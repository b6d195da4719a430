"""Who a web chat request speaks for: the server's signed cookie, or a caller holding the API key.

A fan id a caller can choose is a fan anyone can impersonate: read the operator's replies
waiting for them (phone numbers, refund details) or write into their log. So the page's fan id
is issued by the server (``w-`` + 16 random characters) and kept in the ``brandbot_fan`` cookie,
HttpOnly, signed with itsdangerous (HMAC-SHA256): a cookie not signed with this daemon's secret
is ignored, as if there were none. A ``fan`` chosen by the caller (a site embedding the API
server-side) is accepted only with ``Authorization: Bearer <web.api_key>``, compared in constant
time.

The signing secret is ``web.cookie_secret`` when set; otherwise it is generated once and kept in
a file beside the database (``<db>.cookie-secret``, mode 0600), so cookies survive restarts. It is
never logged; losing the file only means every visitor starts a new conversation.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import stat
from pathlib import Path

from itsdangerous import BadSignature, Signer

COOKIE = "brandbot_fan"
# Over HTTPS the cookie is named with the __Host- prefix: a browser keeps such a cookie only if
# this very host set it (Secure, Path=/, no Domain), so a sibling subdomain or a plain-HTTP
# man in the middle cannot plant its own signed cookie (its fan) in a visitor's browser and then
# read, with that same cookie, the replies meant for the visitor.
SECURE_COOKIE = "__Host-" + COOKIE
COOKIE_MAX_AGE = 365 * 24 * 3600
FAN_ID = re.compile(r"[A-Za-z0-9._:@-]{1,64}")  # always with fullmatch: "$" accepts "id\n"
_SALT = "brandbot.web.fan-cookie"
_SECRET_BYTES = 48

log = logging.getLogger("brandbot.web")


def secret_file(db: str) -> Path | None:
    """Where the generated cookie secret lives: beside the database (None for ``:memory:``)."""
    if db == ":memory:" or db.startswith("file:"):
        return None
    path = Path(db)
    return path.with_name(path.name + ".cookie-secret")


def cookie_secret(configured: str | None, db: str) -> bytes:
    """The configured secret, else the one kept beside the database (made on first use)."""
    if configured:
        return configured.encode("utf-8")
    path = secret_file(db)
    if path is None:  # an in-memory log: nothing to survive a restart for
        return secrets.token_bytes(_SECRET_BYTES)
    return _read_or_create(path)


def _read_or_create(path: Path) -> bytes:
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    # Written whole under a temporary name, then linked in: a reader never sees half a file,
    # and of two processes starting at once the second reads the first one's secret.
    tmp = path.with_name(f"{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, secrets.token_urlsafe(_SECRET_BYTES).encode("ascii") + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
        log.info("web: made a new cookie-signing secret in %s (mode 0600)", path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return _read(path)


def _read(path: Path) -> bytes:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("web: %s was readable by others (mode %o); made it 0600", path, mode)
        path.chmod(0o600)
    value = path.read_bytes().strip()
    if len(value) < 32:
        raise ValueError(
            f"{path} holds no usable cookie secret (under 32 characters); delete it to make a "
            "new one (every web visitor then starts a new conversation) or set web.cookie_secret"
        )
    return value


class WebIdentity:
    """Issues and reads the signed fan cookie; checks the API key."""

    def __init__(self, secret: bytes, api_key: str | None = None):
        self._signer = Signer(secret, salt=_SALT, digest_method=hashlib.sha256)
        self._api_key = api_key.encode("utf-8") if api_key else None

    @staticmethod
    def new_fan() -> str:
        return "w-" + secrets.token_urlsafe(12)

    def cookie_value(self, fan: str) -> str:
        return self._signer.sign(fan).decode("ascii")

    def cookie_fan(self, cookies: dict[str, str], name: str = COOKIE) -> str | None:
        """The fan id in a validly signed cookie ``name``, else None (absent, forged, tampered,
        old)."""
        raw = cookies.get(name)
        if not raw:
            return None
        try:
            fan = self._signer.unsign(raw.encode("utf-8", "replace")).decode("utf-8")
        except (BadSignature, UnicodeDecodeError):
            return None
        return fan if FAN_ID.fullmatch(fan) else None

    @property
    def api_key_set(self) -> bool:
        return self._api_key is not None

    def key_matches(self, authorization: str | None) -> bool:
        """Whether ``Authorization: Bearer <key>`` carries the API key (constant-time compare)."""
        if self._api_key is None or not authorization:
            return False
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(given.strip().encode("utf-8", "replace"), self._api_key)

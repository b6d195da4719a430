"""WeChat push security: signatures, freshness, AES (safe mode) and safe XML parsing.

Protocol (../shared/docs/channels.md §1.2, §1.4):

* ``signature`` = SHA-1 hex of the sorted ``[token, timestamp, nonce]``; on the GET check and on
  every POST. Compared in constant time (wechatpy's ``check_signature`` uses ``!=``) and with a
  timestamp freshness window (wechatpy has none).
* Safe mode: ``msg_signature`` = SHA-1 of the sorted ``[token, timestamp, nonce, Encrypt]``;
  ``Encrypt`` is base64 of AES-256-CBC (key = base64(EncodingAESKey + "="), IV = key[:16]) over
  ``16 random bytes ‖ 4-byte big-endian length ‖ XML ‖ AppID``, PKCS#7-padded to 32 bytes.
* Key rotation: try the current EncodingAESKey, then the previous one; the reply is encrypted
  with the key that worked (wechatpy holds one key per ``WeChatCrypto``, so we hold two).

Decryption is done here with wechatpy's AES primitive and strict checks on every field, so that
a corrupt ciphertext (→ 400) is told apart from a well-formed message for another AppID (→ 403);
wechatpy's own ``decrypt_message`` raises ``UnicodeDecodeError``/``struct.error``/``KeyError``
for the former. Replies are encrypted with wechatpy's ``WeChatCrypto.encrypt_message``.

XML is parsed with defusedxml (DTDs, entities and external references refused: XXE and
"billion laughs" never expand), never with wechatpy's ``parse_message`` (xmltodict, whose entity
handling changes between versions, §1.15). Body size is capped by the caller.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from wechatpy.crypto import WeChatCrypto
from wechatpy.crypto.cryptography import WeChatCipher

_AES_KEY = re.compile(r"^[A-Za-z0-9]{43}$")
_MAX_FIELD_CHARS = 64_000  # no WeChat field comes close; a bigger one is not a WeChat push


class PushRejected(Exception):
    """A push (or verification) refused; ``status`` is the HTTP answer (400, 403)."""

    def __init__(self, status: int, reason: str):
        self.status, self.reason = status, reason
        super().__init__(reason)


def signature(*parts: str) -> str:
    """WeChat's signature: SHA-1 hex of the parts sorted as strings and concatenated."""
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()


def check_signature(
    token: str, sig: str | None, timestamp: str | None, nonce: str | None, *,
    now: float, max_skew: float,
) -> None:
    """Raise :class:`PushRejected` (403) unless ``sig`` signs a fresh timestamp and nonce."""
    if not sig or not timestamp or nonce is None:
        raise PushRejected(403, "missing signature, timestamp or nonce")
    # Bytes, not str: compare_digest refuses non-ASCII strings (a forged é must be a 403).
    if not hmac.compare_digest(
        signature(token, timestamp, nonce).encode(), sig.lower().encode("utf-8", "replace")
    ):
        raise PushRejected(403, "signature does not match the token")
    if max_skew > 0:
        try:
            stamp = int(timestamp)
        except ValueError:
            raise PushRejected(403, "timestamp is not a number") from None
        if abs(now - stamp) > max_skew:
            raise PushRejected(403, f"timestamp {stamp} is more than {max_skew:.0f} s from now")


def check_aes_key(value: str, name: str) -> bytes:
    """The 32-byte AES key of an EncodingAESKey; ValueError naming ``name`` and the fix."""
    if not _AES_KEY.match(value):
        raise ValueError(
            f"{name}: an EncodingAESKey is 43 letters and digits (copy it from the console, "
            f"基本配置 → 服务器配置); got {len(value)} characters"
        )
    key = base64.b64decode(value + "=")
    if len(key) != 32:  # pragma: no cover - 43 base64 characters always give 32 bytes
        raise ValueError(f"{name}: not a valid EncodingAESKey")
    return key


@dataclass(frozen=True, slots=True)
class _Key:
    key: bytes
    crypto: WeChatCrypto


class PushCrypto:
    """Safe-mode decryption and reply encryption for one account, with key rotation."""

    def __init__(self, token: str, app_id: str, aes_key: str, previous_aes_key: str | None = None):
        self.token, self.app_id = token, app_id
        self.keys = [self._key(token, app_id, aes_key, "aes_key")]
        if previous_aes_key:
            self.keys.append(
                self._key(token, app_id, previous_aes_key, "previous_aes_key")
            )

    @staticmethod
    def _key(token: str, app_id: str, value: str, setting: str) -> _Key:
        return _Key(check_aes_key(value, setting), WeChatCrypto(token, value, app_id))

    def decrypt(self, encrypt: str | None, msg_signature: str | None, timestamp: str,
                nonce: str) -> tuple[bytes, int]:
        """The decrypted XML (bytes) and the index of the key that worked.

        403: missing or wrong ``msg_signature``, or a message for another AppID;
        400: ``Encrypt`` missing or not a ciphertext any configured key opens.
        """
        if not encrypt:
            raise PushRejected(400, "encrypted push without an Encrypt element")
        if not msg_signature or not hmac.compare_digest(
            signature(self.token, timestamp, nonce, encrypt).encode(),
            msg_signature.lower().encode("utf-8", "replace"),
        ):
            raise PushRejected(403, "msg_signature does not match")
        try:
            data = base64.b64decode(encrypt, validate=True)
        except (binascii.Error, ValueError):
            raise PushRejected(400, "Encrypt is not base64") from None
        if not data or len(data) % 16:
            raise PushRejected(400, "Encrypt is not an AES-CBC ciphertext")
        other_app = False
        for index, key in enumerate(self.keys):
            frame = _open(key.key, data)
            if frame is None:
                continue
            xml, app_id = frame
            if not hmac.compare_digest(app_id, self.app_id.encode("utf-8")):
                other_app = True
                continue
            return xml, index
        if other_app:
            raise PushRejected(403, "the message is for another AppID")
        raise PushRejected(400, "no configured EncodingAESKey decrypts this push")

    def encrypt_reply(self, xml: str, nonce: str, timestamp: str, key_index: int = 0) -> str:
        """The reply envelope (``<Encrypt/><MsgSignature/><TimeStamp/><Nonce/>``)."""
        return self.keys[key_index].crypto.encrypt_message(xml, nonce, timestamp)


def _open(key: bytes, data: bytes) -> tuple[bytes, bytes] | None:
    """AES-CBC-decrypt a frame and split it into (xml, app id); None if it is not one."""
    plain = WeChatCipher(key).decrypt(data)
    pad = plain[-1]
    if not 1 <= pad <= 32 or plain[-pad:] != bytes([pad]) * pad:
        return None
    body = plain[16:-pad]
    if len(body) < 4:
        return None
    (length,) = struct.unpack(">I", body[:4])
    if length > len(body) - 4:
        return None
    return body[4 : 4 + length], body[4 + length :]


# -- XML ----------------------------------------------------------------------------------------


def parse_xml(body: bytes) -> dict[str, Any]:
    """A push's ``<xml>`` children as ``{tag: text}`` (nested elements as dicts).

    400 for anything that is not a plain, well-formed XML document in UTF-8 (or its declared
    encoding): DTDs, entity declarations, external references, invalid bytes.
    """
    try:
        root = fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise PushRejected(400, f"XML refused: {type(exc).__name__}") from None
    except (ParseError, ValueError, UnicodeError, LookupError) as exc:
        raise PushRejected(400, f"not well-formed XML: {exc}") from None
    if root.tag != "xml":
        raise PushRejected(400, f"the root element is <{root.tag[:40]}>, not <xml>")
    return _children(root)


def _children(element) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for child in element:
        if len(child):
            fields[child.tag] = _children(child)
        else:
            text = (child.text or "").strip() if child.tag != "Content" else (child.text or "")
            if len(text) > _MAX_FIELD_CHARS:
                raise PushRejected(400, f"<{child.tag}> is implausibly long")
            fields[child.tag] = text
    return fields

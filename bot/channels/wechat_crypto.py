"""WeChat push security: signatures, freshness, AES (safe mode) and safe XML parsing.

Protocol (docs/channels/protocol-notes.md W2, W3):

* ``signature`` = SHA-1 hex of the sorted ``[token, timestamp, nonce]``; on the GET check and on
  every POST. Compared in constant time (wechatpy's ``check_signature`` uses ``!=``) and with a
  timestamp freshness window (wechatpy has none).
* Safe mode: ``msg_signature`` = SHA-1 of the sorted ``[token, timestamp, nonce, Encrypt]``;
  ``Encrypt`` is base64 of AES-256-CBC (key = base64(EncodingAESKey + "="), IV = key[:16]) over
  ``16 random bytes ‖ 4-byte big-endian length ‖ XML ‖ AppID``, PKCS#7-padded to 32 bytes.
* Key rotation: try the current EncodingAESKey, then the previous one; the reply is encrypted
  with the key that worked (wechatpy holds one key per ``WeChatCrypto``, so we hold two).

Both directions are done here with the ``cryptography`` AES-CBC primitive wechatpy itself uses,
one ``Cipher`` per key built once (the IV is fixed: key[:16]) and fresh encryptor/decryptor
contexts per message. Decryption checks every field, so that a corrupt ciphertext (→ 400) is told
apart from a well-formed message for another AppID (→ 403); wechatpy's own ``decrypt_message``
raises ``UnicodeDecodeError``/``struct.error``/``KeyError`` for the former. Replies are
byte-for-byte what wechatpy's ``WeChatCrypto.encrypt_message`` writes (same frame, padding and
envelope), except that the 16-character random prefix comes from ``os.urandom`` (wechatpy uses
``random.sample``, a non-cryptographic generator).

XML is parsed with expat directly, refusing what defusedxml's ``forbid_dtd``/``forbid_entities``/
``forbid_external`` refuse (any DOCTYPE, hence any entity declaration or external reference: XXE
and "billion laughs" never expand), never with wechatpy's ``parse_message`` (xmltodict, whose
entity handling changes between versions, protocol notes W10). Body size is capped by the caller.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import struct
from dataclasses import dataclass
from typing import Any
from xml.parsers.expat import ExpatError, ParserCreate

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from bot.channels.base import Refused

_AES_KEY = re.compile(r"^[A-Za-z0-9]{43}$")
_MAX_FIELD_CHARS = 64_000  # no WeChat field comes close; a bigger one is not a WeChat push
_MAX_DEPTH = 16  # WeChat nests 5 deep at most (SendPicsInfo/PicList/item/PicMd5Sum)
_LENGTH = struct.Struct(">I")
_PADS = [bytes([n]) * n for n in range(33)]  # PKCS#7 to 32 bytes: _PADS[n] is n bytes of n
_ALNUM = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_TO_ALNUM = bytes(_ALNUM[b % len(_ALNUM)] for b in range(256))  # for the random prefix
# wechatpy's reply envelope, byte for byte (wechatpy.crypto.BaseWeChatCrypto._encrypt_message).
_ENVELOPE = (
    "<xml>\n<Encrypt><![CDATA[{}]]></Encrypt>\n<MsgSignature><![CDATA[{}]]></MsgSignature>\n"
    "<TimeStamp>{}</TimeStamp>\n<Nonce><![CDATA[{}]]></Nonce>\n</xml>"
)


class PushRejected(Refused):
    """A push (or verification) refused; ``status`` is the HTTP answer (400, 403)."""


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
    cipher: Cipher  # AES-256-CBC, IV = key[:16]; a fresh encryptor/decryptor per message


class PushCrypto:
    """Safe-mode decryption and reply encryption for one account, with key rotation."""

    def __init__(self, token: str, app_id: str, aes_key: str, previous_aes_key: str | None = None):
        self.token, self.app_id = token, app_id
        self._app_id = app_id.encode("utf-8")
        self.keys = [self._key(aes_key, "aes_key")]
        if previous_aes_key:
            self.keys.append(self._key(previous_aes_key, "previous_aes_key"))

    @staticmethod
    def _key(value: str, setting: str) -> _Key:
        key = check_aes_key(value, setting)
        return _Key(key, Cipher(algorithms.AES(key), modes.CBC(key[:16])))

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
            data = binascii.a2b_base64(encrypt, strict_mode=True)  # b64decode(validate=True)
        except (binascii.Error, ValueError):
            raise PushRejected(400, "Encrypt is not base64") from None
        if not data or len(data) % 16:
            raise PushRejected(400, "Encrypt is not an AES-CBC ciphertext")
        other_app = False
        for index, key in enumerate(self.keys):
            frame = _open(key.cipher, data)
            if frame is None:
                continue
            xml, app_id = frame
            if not hmac.compare_digest(app_id, self._app_id):
                other_app = True
                continue
            return xml, index
        if other_app:
            raise PushRejected(403, "the message is for another AppID")
        raise PushRejected(400, "no configured EncodingAESKey decrypts this push")

    def encrypt_reply(self, xml: str, nonce: str, timestamp: str, key_index: int = 0) -> str:
        """The reply envelope (``<Encrypt/><MsgSignature/><TimeStamp/><Nonce/>``), as wechatpy's
        ``WeChatCrypto.encrypt_message`` writes it."""
        text = xml.encode("utf-8")
        frame = b"".join((
            os.urandom(16).translate(_TO_ALNUM), _LENGTH.pack(len(text)), text, self._app_id,
        ))
        frame += _PADS[32 - len(frame) % 32]  # 1 to 32 bytes, never 0
        encryptor = self.keys[key_index].cipher.encryptor()
        encrypt = binascii.b2a_base64(
            encryptor.update(frame) + encryptor.finalize(), newline=False
        ).decode("ascii")
        return _ENVELOPE.format(
            encrypt, signature(self.token, timestamp, nonce, encrypt), timestamp, nonce
        )


def _open(cipher: Cipher, data: bytes) -> tuple[bytes, bytes] | None:
    """AES-CBC-decrypt a frame and split it into (xml, app id); None if it is not one."""
    decryptor = cipher.decryptor()
    plain = decryptor.update(data) + decryptor.finalize()
    pad = plain[-1]
    if not 1 <= pad <= 32 or plain[-pad:] != _PADS[pad]:
        return None
    body = plain[16:-pad]
    if len(body) < 4:
        return None
    (length,) = _LENGTH.unpack_from(body)
    if length > len(body) - 4:
        return None
    return body[4 : 4 + length], body[4 + length :]


# -- XML ----------------------------------------------------------------------------------------


class _Refused(Exception):
    """A DOCTYPE, entity declaration or external reference (what defusedxml would refuse)."""


def _refuse_dtd(*_: object) -> None:
    raise _Refused("DTDForbidden")


def _refuse_entity(*_: object) -> None:
    raise _Refused("EntitiesForbidden")


def _refuse_external(*_: object) -> None:
    raise _Refused("ExternalReferenceForbidden")


def parse_xml(body: bytes) -> dict[str, Any]:
    """A push's ``<xml>`` children as ``{tag: text}`` (nested elements as dicts).

    400 for anything that is not a plain, well-formed XML document in UTF-8 (or its declared
    encoding): DTDs, entity declarations, external references, invalid bytes, nesting deeper
    than WeChat's. Text is stripped, except ``Content``'s; tags are ElementTree's
    (``{namespace}name``); a repeated tag keeps its last value.
    """
    # One expat parser per document (expat cannot be reset from Python; creating one costs less
    # than a microsecond), with the handlers defusedxml installs for forbid_dtd/_entities/
    # _external: a DOCTYPE is refused as soon as it starts, before any declaration in it.
    parser = ParserCreate(None, "}")
    parser.buffer_text = True
    parser.ordered_attributes = True
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_entity
    parser.UnparsedEntityDeclHandler = _refuse_entity
    parser.ExternalEntityRefHandler = _refuse_external
    root: dict[str, Any] = {}
    texts: list[str] = []  # all character data, in document order
    # Open elements, the root first: [tag, where its text starts in texts, its children (None
    # until one ends)]. A leaf's text is texts[start:]; an element's with children is ignored.
    stack: list[list[Any]] = []

    def start(tag: str, _attrs: object) -> None:
        if "}" in tag:
            tag = "{" + tag  # ElementTree's spelling of a namespaced tag
        if stack:
            if len(stack) >= _MAX_DEPTH:
                raise PushRejected(400, "the XML is nested too deeply")
            stack.append([tag, len(texts), None])
        elif tag == "xml":
            stack.append([tag, 0, root])
        else:
            raise PushRejected(400, f"the root element is <{tag[:40]}>, not <xml>")

    def end(_tag: str) -> None:
        tag, at, value = stack.pop()
        if not stack:
            return  # </xml>
        if value is None:
            value = "".join(texts[at:])
            if tag != "Content":
                value = value.strip()
            if len(value) > _MAX_FIELD_CHARS:
                raise PushRejected(400, f"<{tag}> is implausibly long")
        parent = stack[-1]
        if parent[2] is None:
            parent[2] = {tag: value}
        else:
            parent[2][tag] = value

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = texts.append
    try:
        parser.Parse(body, True)
    except _Refused as exc:
        raise PushRejected(400, f"XML refused: {exc}") from None
    except (ExpatError, ValueError, UnicodeError, LookupError) as exc:
        raise PushRejected(400, f"not well-formed XML: {exc}") from None
    return root

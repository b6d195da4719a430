"""Signatures, safe-mode crypto, XML parsing and reply building, without HTTP."""

from __future__ import annotations

import pytest
import xmltodict
from wechatpy.crypto import WeChatCrypto
from wechatpy.replies import TextReply
from wechatpy.utils import check_signature as wechatpy_check_signature

from bot.channels.wechat_crypto import (
    PushCrypto,
    PushRejected,
    check_signature,
    parse_xml,
    signature,
)
from bot.channels.wechat_reply import cdata, split_text, text_reply
from tests.fakes.wechat_api import AES_KEY, APP_ID, OLD_AES_KEY, TOKEN, text_push
from tests.test_wechat import LAUGHS, XXE

# Tencent's worked example (message-push server configuration page; protocol notes W2).
VECTOR = ("AAAAA", "1714036504", "1514711492", "f464b24fc39322e44b38aa78f5edd27bd1441696")


def test_tencents_published_signature_example():
    token, timestamp, nonce, expected = VECTOR
    assert sorted([token, timestamp, nonce]) == ["1514711492", "1714036504", "AAAAA"]
    assert signature(token, timestamp, nonce) == expected
    wechatpy_check_signature(token, expected, timestamp, nonce)  # wechatpy agrees
    check_signature(token, expected, timestamp, nonce, now=1714036504, max_skew=300)
    check_signature(token, expected.upper(), timestamp, nonce, now=1714036504, max_skew=300)


@pytest.mark.parametrize("sig, timestamp, now", [
    ("f464b24fc39322e44b38aa78f5edd27bd1441697", "1714036504", 1714036504),  # forged
    ("é464b24fc39322e44b38aa78f5edd27bd1441697", "1714036504", 1714036504),  # non-ASCII
    (None, "1714036504", 1714036504),  # missing
    ("f464b24fc39322e44b38aa78f5edd27bd1441696", "1714036504", 1714036504 + 301),  # stale
    ("f464b24fc39322e44b38aa78f5edd27bd1441696", "1714036504", 1714036504 - 301),  # future
])
def test_bad_or_stale_signatures_are_403(sig, timestamp, now):
    with pytest.raises(PushRejected) as err:
        check_signature("AAAAA", sig, timestamp, "1514711492", now=now, max_skew=300)
    assert err.value.status == 403


def encrypted(xml: str, key: str = AES_KEY, app_id: str = APP_ID, nonce: str = "n1",
              timestamp: str = "1700000000") -> tuple[str, str]:
    envelope = xmltodict.parse(WeChatCrypto(TOKEN, key, app_id).encrypt_message(
        xml, nonce, timestamp))["xml"]
    return envelope["Encrypt"], envelope["MsgSignature"]


def test_safe_mode_decrypts_what_wechatpy_encrypts_and_back():
    crypto = PushCrypto(TOKEN, APP_ID, AES_KEY)
    xml = text_push("oUser", "你好 ]]> & <", 1, create_time=1700000000)
    encrypt, msg_sig = encrypted(xml)
    plain, index = crypto.decrypt(encrypt, msg_sig, "1700000000", "n1")
    assert (plain.decode(), index) == (xml, 0)
    reply = crypto.encrypt_reply("<xml><Content>hi</Content></xml>", "n2", "1700000001")
    envelope = xmltodict.parse(reply)["xml"]
    opened = WeChatCrypto(TOKEN, AES_KEY, APP_ID).decrypt_message(
        reply, envelope["MsgSignature"], envelope["TimeStamp"], envelope["Nonce"])
    assert opened == "<xml><Content>hi</Content></xml>"


def test_replies_of_every_length_open_with_wechatpy_using_the_key_that_worked():
    # Our own framing and PKCS#7 padding (1-32 bytes) must match wechatpy's for any length.
    crypto = PushCrypto(TOKEN, APP_ID, AES_KEY, OLD_AES_KEY)
    for n in range(70):
        xml = "<xml><Content>" + "好😀a]]>"[: n % 5] * n + "</Content></xml>"
        for index, key in enumerate((AES_KEY, OLD_AES_KEY)):
            reply = crypto.encrypt_reply(xml, "n", "1700000001", key_index=index)
            envelope = xmltodict.parse(reply)["xml"]
            opened = WeChatCrypto(TOKEN, key, APP_ID).decrypt_message(
                reply, envelope["MsgSignature"], envelope["TimeStamp"], envelope["Nonce"])
            assert opened == xml


def test_key_rotation_tries_the_previous_key():
    crypto = PushCrypto(TOKEN, APP_ID, AES_KEY, OLD_AES_KEY)
    encrypt, msg_sig = encrypted("<xml><A>1</A></xml>", key=OLD_AES_KEY)
    assert crypto.decrypt(encrypt, msg_sig, "1700000000", "n1") == (b"<xml><A>1</A></xml>", 1)
    with pytest.raises(PushRejected) as err:
        PushCrypto(TOKEN, APP_ID, AES_KEY).decrypt(encrypt, msg_sig, "1700000000", "n1")
    assert err.value.status == 400


def test_wrong_appid_is_403_and_corrupt_ciphertext_400():
    crypto = PushCrypto(TOKEN, APP_ID, AES_KEY)
    encrypt, msg_sig = encrypted("<xml/>", app_id="wxAnotherAccount0001")
    with pytest.raises(PushRejected) as err:
        crypto.decrypt(encrypt, msg_sig, "1700000000", "n1")
    assert err.value.status == 403
    with pytest.raises(PushRejected) as err:
        crypto.decrypt(encrypt, "0" * 40, "1700000000", "n1")
    assert err.value.status == 403
    for corrupt in ("***", "QUJDRA==", encrypt[:-24] + "A" * 22 + "==", ""):
        sig = signature(TOKEN, "1700000000", "n1", corrupt)
        with pytest.raises(PushRejected) as err:
            crypto.decrypt(corrupt, sig, "1700000000", "n1")
        assert err.value.status == 400, corrupt


def test_malformed_aes_keys_are_refused_with_the_fix():
    with pytest.raises(ValueError, match="43 letters and digits"):
        PushCrypto(TOKEN, APP_ID, "too-short")


@pytest.mark.parametrize("body", [
    XXE, LAUGHS, b"<xml><A>\xff</A></xml>", b"", b"<xml>", b"<root/>",
    b'<!DOCTYPE xml SYSTEM "http://example.invalid/x.dtd"><xml/>',
    b'<?xml version="1.0"?><?xml-stylesheet href="http://x"?><xml><A>&#0;</A></xml>',
    b"<xml>" + b"<A>" * 40 + b"x" + b"</A>" * 40 + b"</xml>",  # deeper than any push
])
def test_parse_xml_refuses_entities_dtds_and_malformed_input(body):
    with pytest.raises(PushRejected) as err:
        parse_xml(body)
    assert err.value.status == 400


def test_parse_xml_reads_fields_keeping_content_whitespace():
    fields = parse_xml(b"<xml><MsgType><![CDATA[text]]></MsgType><Content>  hi  </Content>"
                       b"<ScanCodeInfo><ScanType>qrcode</ScanType></ScanCodeInfo></xml>")
    assert fields == {"MsgType": "text", "Content": "  hi  ",
                      "ScanCodeInfo": {"ScanType": "qrcode"}}


def test_a_cdata_terminator_cannot_break_the_reply():
    tricky = "x]]><evil/>]]>y\x00\x1f"
    xml = text_reply("oUser", "gh_x", tricky, 1700000000)
    assert xmltodict.parse(xml)["xml"]["Content"] == "x]]><evil/>]]>y"
    assert parse_xml(xml.encode())["Content"] == "x]]><evil/>]]>y"
    assert cdata("]]>") == "<![CDATA[]]]]><![CDATA[>]]>"
    # wechatpy's own reply breaks (why we build our own): docs/channels/protocol-notes.md W6.
    broken = TextReply(source="gh_x", target="oUser", content=tricky.rstrip("\x00\x1f")).render()
    with pytest.raises(Exception):  # noqa: B017 - expat's error type
        xmltodict.parse(broken)


def test_split_text_prefers_natural_boundaries_and_never_splits_a_character():
    text = "第一句话。" * 500
    pieces = split_text(text, 1800)
    assert all(len(p.encode()) <= 1800 for p in pieces)
    assert all(p.endswith("。") for p in pieces)
    assert "".join(pieces) == text
    words = " ".join(["word"] * 1000)
    assert all(len(p.encode()) <= 300 for p in split_text(words, 300))
    assert " ".join(split_text(words, 300)) == words
    emoji = "😀" * 1000  # 4 bytes each, no boundary: a hard cut between characters
    pieces = split_text(emoji, 1800)
    assert "".join(pieces) == emoji and all(len(p.encode()) <= 1800 for p in pieces)
    assert split_text("short") == ["short"] and split_text("   ") == []
    # Lone surrogates (possible in text from the web chat's JSON) once made this loop forever.
    odd = "\ud800" * 20 + "好" * 10
    pieces = split_text(odd, 8)
    assert "".join(pieces) == odd
    assert all(len(p.encode("utf-8", "surrogatepass")) <= 8 for p in pieces)

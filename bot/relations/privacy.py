"""A fan's personal data: export it, or forget it.

WeChat requires a developer to delete what it holds about a user who unfollows (the event
documentation for ``unsubscribe``, docs/channels/protocol-notes.md W4); ``brandbot fan export`` and
``brandbot fan forget`` use the same two functions for requests from any channel.

What :func:`forget_fan` does (docs/channels/wechat.md, "Unfollow and personal data"):

===================  =========================================  ==============================
                     ``keep_aggregates=True`` (default)         ``keep_aggregates=False``
===================  =========================================  ==============================
fan row              kept, anonymised: ``external_id`` becomes  deleted
                     ``forgotten-<id>``; display name,
                     language, tags, voice memory, dialog
                     state, referral code cleared; unsubscribed
                     and blocked
messages             kept without content: ``text`` emptied,    deleted
                     ``platform_msg_id`` cleared (direction,
                     intent, time, channel stay countable)
events               kept; payload reduced to non-personal      deleted
                     keys (codes, stages, sources)
referrals            kept (campaign and referrer counts)        deleted; fans this fan
                                                                referred keep their row
                                                                without the link
deliveries           kept (newsletter delivery counts)          deleted
codes                a code the fan arrived with (``ref``) is kept only if operators made it:
                     a registered campaign, or a WeChat QR scene (only the account can create
                     those). Any other code (a web ``?ref=`` or Telegram ``/start`` payload
                     anyone can type) becomes ``(forgotten)`` in ``fans.source_code``,
                     ``referrals.code`` and event payloads. The fan's own referral code goes
                     from other fans' rows too.
pending WeChat       deleted (it holds the OpenID)              deleted
unfollow
===================  =========================================  ==============================

Either way nothing left can be joined back to the person: the platform id, their words, their
name and their profile are gone. Operators who want no aggregates at all set
``keep_aggregates=False`` (channel setting ``wechat.keep_aggregates``). One transaction: a
crash forgets everything or nothing.

Deleted bytes do not linger: the store runs with ``PRAGMA secure_delete`` (SQLite overwrites
what it deletes with zeros) and, once the transaction is committed, :func:`forget_fan` runs a
``wal_checkpoint(TRUNCATE)``, so the old pages still in the ``-wal`` file go too, even while
the daemon keeps the database open (a reader holding an old snapshot past 2 s: logged, and a
second forget empties it).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from typing import Any

from bot.errors import UnknownFanError
from bot.i18n import _
from bot.relations.store import Store, dumps

log = logging.getLogger("brandbot.privacy")

# Event payload keys that never hold personal data (codes, stage names, sources, intents).
# ``code`` and ``ref`` hold what the fan arrived with: kept only when it names a campaign.
_SAFE_PAYLOAD_KEYS = frozenset(
    {"code", "ref", "referrer_id", "from", "to", "score", "source", "intent", "via", "reason"}
)
_CODE_KEYS = ("code", "ref")
# What replaces a code that is not a registered campaign: it still counts ("a fan came with
# some code") but says nothing of what the fan typed or whose link they followed.
FORGOTTEN_CODE = "(forgotten)"
# Channels whose codes no fan can choose: a WeChat QR scene is created by the account's API.
_OPERATOR_CODE_CHANNELS = frozenset({"wechat"})
# How long the WAL truncation after a forget waits for readers of older snapshots.
TRUNCATE_WAIT_MS = 2_000


def export_fan(store: Store, fan_id: int) -> dict[str, Any]:
    """Everything the log holds about one fan, as JSON-ready data (a subject-access request)."""
    with store.lock:
        conn = store.conn
        fan = conn.execute("SELECT * FROM fans WHERE id = ?", (fan_id,)).fetchone()
        if fan is None:
            raise UnknownFanError(_("no fan with id {id}").format(id=fan_id))

        def rows(sql: str, *args: Any) -> list[dict[str, Any]]:
            return [dict(r) for r in conn.execute(sql, args)]

        events = rows("SELECT kind, payload, created_at FROM events WHERE fan_id = ? ORDER BY id",
                      fan_id)
        for event in events:
            event["payload"] = json.loads(event["payload"] or "{}")
        fan_data = dict(fan)
        for key in ("tags", "voice_memory"):
            fan_data[key] = json.loads(fan_data[key] or "null")
        return {
            "fan": fan_data,
            "messages": rows(
                "SELECT id, direction, text, kind, intent, language, reply_key, platform_msg_id, "
                "in_reply_to, channel, created_at FROM messages WHERE fan_id = ? ORDER BY id",
                fan_id,
            ),
            "events": events,
            "referred_by": rows(
                "SELECT code, referrer_id, channel, created_at FROM referrals "
                "WHERE referred_id = ?", fan_id,
            ),
            "referred": rows(
                "SELECT referred_id, code, channel, created_at FROM referrals "
                "WHERE referrer_id = ? ORDER BY id", fan_id,
            ),
            "deliveries": rows(
                "SELECT d.broadcast_id, d.status, d.sent_at, b.text FROM deliveries d "
                "JOIN broadcasts b ON b.id = d.broadcast_id WHERE d.fan_id = ? ORDER BY d.id",
                fan_id,
            ),
            "outbox": rows(
                "SELECT text, reply_key, language, created_at, delivered_at FROM outbox "
                "WHERE fan_id = ? ORDER BY id", fan_id,
            ),
            # An unsubscribe nobody signed, waiting (bot/channels/wechat_unfollow.py).
            "pending_unfollow": rows(
                "SELECT received_at, due_at FROM wechat_unfollows WHERE persona = ? AND "
                "openid = ?", fan["persona"], fan["external_id"],
            ) if fan["channel"] == "wechat" else [],
        }


def forget_fan(store: Store, fan_id: int, keep_aggregates: bool = True) -> dict[str, int]:
    """Delete or anonymise one fan's personal data (see the module docstring).

    Returns how many rows were changed per table; raises
    :class:`~bot.errors.UnknownFanError` for an unknown id.
    Forgetting an already anonymised fan is harmless.
    """
    with store.transaction() as conn:
        fan = conn.execute(
            "SELECT persona, channel, external_id, referral_code FROM fans WHERE id = ?",
            (fan_id,)).fetchone()
        if fan is None:
            raise UnknownFanError(_("no fan with id {id}").format(id=fan_id))
        if fan["channel"] == "wechat":  # a deferred unfollow keeps the OpenID (wechat_unfollow.py)
            conn.execute("DELETE FROM wechat_unfollows WHERE persona = ? AND openid = ?",
                         (fan["persona"], fan["external_id"]))
        _scrub_codes(conn, fan_id, fan["channel"], fan["referral_code"])
        changed = _anonymise(conn, fan_id) if keep_aggregates else _delete(conn, fan_id)
    _truncate_wal(store)
    return changed


def _truncate_wal(store: Store, wait_ms: int = TRUNCATE_WAIT_MS) -> bool:
    """Copy the WAL into the database and empty it: its old frames still hold the fan's words.

    On a connection of its own, so the store's lock (the daemon's turns) is not held while it
    waits up to ``wait_ms`` for readers of older snapshots (another process's long report).
    Returns False, and logs what to do, if one still holds on.
    """
    if store.path == ":memory:":
        return True
    conn = sqlite3.connect(store.path, isolation_level=None, timeout=wait_ms / 1000)
    try:
        conn.execute(f"PRAGMA busy_timeout={int(wait_ms)}")
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    except sqlite3.OperationalError:  # locked past the wait
        busy = 1
    finally:
        conn.close()
    if busy:
        log.warning("forget: a reader kept the WAL file open, so it still holds old pages; "
                    "run the same `brandbot fan forget` again when it is done (harmless) "
                    "to empty it")
    return not busy


def _scrub_codes(conn, fan_id: int, channel: str, own_code: str | None) -> None:
    """Replace fan-supplied codes (and this fan's own referral code elsewhere) with a marker.

    Codes operators made stay (registered campaigns, WeChat QR scenes): campaign counts rely
    on them and they say nothing about the fan.
    """
    campaigns = {r[0] for r in conn.execute("SELECT code FROM campaigns")}
    operator_made = channel in _OPERATOR_CODE_CHANNELS

    def scrub(code: Any) -> Any:
        if code is None or code in campaigns or operator_made:
            return code
        return FORGOTTEN_CODE

    # What the fan arrived with: the fan's row, their referral row and their events.
    row = conn.execute("SELECT source_code FROM fans WHERE id = ?", (fan_id,)).fetchone()
    conn.execute("UPDATE fans SET source_code = ? WHERE id = ?", (scrub(row[0]), fan_id))
    for ref in conn.execute("SELECT id, code FROM referrals WHERE referred_id = ?",
                            (fan_id,)).fetchall():
        conn.execute("UPDATE referrals SET code = ? WHERE id = ?", (scrub(ref[1]), ref[0]))
    _scrub_payloads(conn, conn.execute(
        "SELECT id, payload FROM events WHERE fan_id = ?", (fan_id,)).fetchall(), scrub)
    if own_code is None or own_code in campaigns:
        return
    # The fan's personal code in the rows of fans they brought in: a link back to the person
    # who shared it (referrer counts stay: they use ``referred_by`` / ``referrer_id``).
    conn.execute(
        "UPDATE fans SET source_code = ? WHERE source_code = ? AND id IN "
        "(SELECT referred_id FROM referrals WHERE code = ?)", (FORGOTTEN_CODE, own_code, own_code)
    )
    conn.execute("UPDATE referrals SET code = ? WHERE code = ?", (FORGOTTEN_CODE, own_code))
    _scrub_payloads(conn, conn.execute(  # one scan of the events: forgetting is rare
        "SELECT id, payload FROM events WHERE instr(payload, ?) > 0", (own_code,)).fetchall(),
        lambda code: FORGOTTEN_CODE if code == own_code else code)


def _scrub_payloads(conn, events, scrub) -> None:
    for event in events:
        payload = json.loads(event["payload"] or "{}")
        new = {k: scrub(v) if k in _CODE_KEYS and v is not None else v
               for k, v in payload.items()}
        if new != payload:
            conn.execute("UPDATE events SET payload = ? WHERE id = ?", (dumps(new), event["id"]))


def _anonymise(conn, fan_id: int) -> dict[str, int]:
    changed = {}
    changed["messages"] = conn.execute(
        "UPDATE messages SET text = '', platform_msg_id = NULL WHERE fan_id = ?", (fan_id,)
    ).rowcount
    events = conn.execute("SELECT id, payload FROM events WHERE fan_id = ?", (fan_id,)).fetchall()
    for row in events:
        payload = json.loads(row["payload"] or "{}")
        kept = {k: v for k, v in payload.items() if k in _SAFE_PAYLOAD_KEYS}
        if kept != payload:
            conn.execute("UPDATE events SET payload = ? WHERE id = ?", (dumps(kept), row["id"]))
    changed["events"] = len(events)
    # The operator-group topic mapping links the fan to a thread titled with their name.
    changed["desk_topics"] = conn.execute(
        "DELETE FROM desk_topics WHERE fan_id = ?", (fan_id,)
    ).rowcount
    changed["fans"] = conn.execute(
        # ``forgotten-<id>``, unless another fan's external id (chosen by others: a site's own
        # user ids through the web API key) already reads so: then a random tail, or the
        # unique index would refuse the forgetting.
        "UPDATE fans SET external_id = 'forgotten-' || id || CASE WHEN EXISTS (SELECT 1 FROM "
        "fans o WHERE o.persona = fans.persona AND o.channel = fans.channel AND o.id != fans.id "
        "AND o.external_id = 'forgotten-' || fans.id) THEN '-' || lower(hex(randomblob(6))) "
        "ELSE '' END, display_name = NULL, language = NULL, "
        "tags = '[]', voice_memory = '{}', dialog_state = NULL, referral_code = NULL, "
        "subscribed = 0, blocked = 1, handoff = 0, misses = 0 WHERE id = ?",
        (fan_id,),
    ).rowcount
    return changed


def _delete(conn, fan_id: int) -> dict[str, int]:
    changed = {}
    # Links from other fans to this one go; their own rows stay.
    conn.execute("UPDATE fans SET referred_by = NULL WHERE referred_by = ?", (fan_id,))
    conn.execute("UPDATE referrals SET referrer_id = NULL WHERE referrer_id = ?", (fan_id,))
    changed["referrals"] = conn.execute(
        "DELETE FROM referrals WHERE referred_id = ?", (fan_id,)
    ).rowcount
    changed["deliveries"] = conn.execute(
        "DELETE FROM deliveries WHERE fan_id = ?", (fan_id,)
    ).rowcount
    changed["events"] = conn.execute("DELETE FROM events WHERE fan_id = ?", (fan_id,)).rowcount
    # Replies first: they point at the fan's inbound rows (in_reply_to).
    changed["messages"] = conn.execute(
        "DELETE FROM messages WHERE fan_id = ? AND in_reply_to IS NOT NULL", (fan_id,)
    ).rowcount
    changed["messages"] += conn.execute(
        "DELETE FROM messages WHERE fan_id = ?", (fan_id,)
    ).rowcount
    changed["fans"] = conn.execute("DELETE FROM fans WHERE id = ?", (fan_id,)).rowcount
    return changed

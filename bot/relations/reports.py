"""``brandbot report``: what the relationship log says, as terminal tables or one HTML file.

:func:`build` reads the log into plain data (JSON-ready); :func:`to_text` prints it;
:func:`to_html` writes one self-contained page — inline CSS, SVG charts drawn here, a few lines
of inline JavaScript for tooltips — that opens from disk with no server and no network.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
from statistics import median
from typing import Any

from bot.i18n import _, columns
from bot.persona.model import STAGES, Relationship
from bot.relations.desk import time_to_first_reply
from bot.relations.kols import rank
from bot.relations.store import Store, iso
from bot.tables import TABLE_WIDTH, format_table

# The replies that mean "the bot did not understand" (see dialogs/default.yaml). A message with
# no intent that a dialog state took (a bare "yes" to a confirmation step) got none of them and
# is not a miss.
MISS_REPLIES = "('fallback', 'offer_human', 'clarify')"


def build(store: Store, now: datetime, since: datetime | None = None,
          persona: str | None = None, rules: Relationship | None = None,
          zone: tzinfo = UTC,
          rules_of: Callable[[str], Relationship | None] | None = None) -> dict[str, Any]:
    """Everything the report shows, for fans of ``persona`` (all when None) since ``since``.

    Days are counted in ``zone`` (the brand's: a Chengdu restaurant's evening belongs to that
    day, not the next UTC one). Top KOLs: ``persona``'s ranked by ``rules``; with no persona,
    every persona of the log's, each ranked by ``rules_of(persona_id)`` (None: left out).
    """
    since = since or now - timedelta(days=30)
    start = iso(since.astimezone(UTC))
    day_of, bucket = _local_days(zone, now)
    # A log whose every fan is this persona's (the usual one): the filter would change nothing
    # and cost a fan look-up per message and event (1 M fans, 10 M messages: most of 30 s).
    scope = persona if persona and not _only_persona(store, persona) else None
    pf = " AND f.persona = ?" if scope else ""
    pp: tuple = (scope,) if scope else ()
    of_fans = " JOIN fans f ON f.id = e.fan_id" if scope else ""

    def q(sql: str, *args: Any) -> list[tuple]:
        return [tuple(r) for r in store.fetch_all(sql, args)]

    funnel = dict(q(f"SELECT stage, count(*) FROM fans f WHERE 1{pf} GROUP BY stage", *pp))
    new_by_day: Counter[str] = Counter()
    for hour, n in q(f"SELECT {bucket('first_seen')} h, count(*) FROM fans f "
                     f"WHERE first_seen >= ?{pf} GROUP BY h", start, *pp):
        new_by_day[day_of(hour)] += n
    new_per_day = sorted(new_by_day.items())
    campaigns = dict(q("SELECT code, name FROM campaigns"))
    sources: Counter[str] = Counter()
    for referred_by, code, n in q(
        f"SELECT referred_by IS NOT NULL, CASE WHEN referred_by IS NULL THEN source_code END, "
        f"count(*) FROM fans f "
        f"WHERE first_seen >= ?{pf} GROUP BY 1, 2", start, *pp
    ):
        if referred_by:
            sources["referred by a fan"] += n
        elif code:
            sources[f"campaign: {campaigns.get(code, code)}"] += n
        else:
            sources["direct (no code)"] += n
    subscribers = q(f"SELECT count(*) FROM fans f WHERE subscribed = 1{pf}", *pp)[0][0]
    consent = dict(q(
        f"SELECT e.kind, count(*) FROM events e{of_fans} WHERE e.fan_id IS NOT NULL "
        f"AND e.kind IN ('subscribe', 'unsubscribe') AND e.created_at >= ?{pf} GROUP BY 1",
        start, *pp))
    # The period's messages first (index messages_created), then their fans if it takes a
    # look-up (the planner would otherwise take every fan and look up all their messages).
    messages = "FROM messages m" + (" CROSS JOIN fans f ON f.id = m.fan_id" if scope else "")
    per_day: dict[str, dict[str, int]] = {}
    by_intent: Counter[str] = Counter()
    for hour, direction, intent, n in q(  # one pass for both: messages per day, top intents
        f"SELECT {bucket('m.created_at')}, m.direction, CASE WHEN m.direction = 'in' "
        f"AND m.kind = 'message' THEN m.intent END, count(*) {messages} "
        f"WHERE m.created_at >= ?{pf} GROUP BY 1, 2, 3",
        start, *pp
    ):
        per_day.setdefault(day_of(hour), {"in": 0, "out": 0})[direction] += n
        if intent is not None:
            by_intent[intent] += n
    intents = sorted(by_intent.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    missed = q(
        f"SELECT lower(trim(m.text)) t, count(*) {messages} "
        f"WHERE m.direction = 'in' AND m.kind = 'message' AND m.intent IS NULL "
        f"AND m.text != '' AND m.created_at >= ?{pf} AND EXISTS (SELECT 1 FROM messages o "
        f"WHERE o.in_reply_to = m.id AND o.reply_key IN {MISS_REPLIES}) "
        f"GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10",
        start, *pp)
    started, timed_out = q(
        f"SELECT coalesce(sum(e.kind = 'handoff'), 0), "
        f"coalesce(sum(e.kind = 'handoff_timeout'), 0) "
        f"FROM events e{of_fans} WHERE e.fan_id IS NOT NULL "
        f"AND e.kind IN ('handoff', 'handoff_timeout') AND e.created_at >= ?{pf}",
        start, *pp)[0]
    open_now = q(f"SELECT count(*) FROM fans f WHERE handoff = 1{pf}", *pp)[0][0]
    waits = time_to_first_reply(store, start, scope)
    kols = []
    if persona:
        ranked = [(persona, rules)] if rules is not None else []
    else:
        ranked = [(p, rules_of(p)) for p in _personas(store)] if rules_of else []
    for pid, its_rules in ranked:
        if its_rules is None:
            continue
        kols += [{"persona": pid, "fan_id": k.fan_id, "name": k.name, "channel": k.channel,
                  "direct": k.direct, "second": k.second,
                  "influence": round(k.influence, 1), "kol": k.tagged}
                 for k in rank(store, pid, its_rules, now, limit=10)]
    return {
        "persona": persona,
        "timezone": str(zone),
        "since": since.astimezone(zone).date().isoformat(),
        "generated": f"{now.astimezone(zone):%Y-%m-%d %H:%M} {zone}",
        "funnel": [[s, funnel.get(s, 0)] for s in STAGES],
        "fans": sum(funnel.values()),
        "new_fans_per_day": [list(r) for r in new_per_day],
        "new_fans_by_source": sources.most_common(),
        "subscribers": subscribers,
        "subscribed": consent.get("subscribe", 0),
        "unsubscribed": consent.get("unsubscribe", 0),
        "messages_per_day": [[d, v["in"], v["out"]] for d, v in sorted(per_day.items())],
        "top_intents": [list(r) for r in intents],
        "not_understood": [list(r) for r in missed],
        "handoffs": {
            "started": started,
            "timed_out": timed_out,
            "open_now": open_now,
            "answered": len(waits),
            "median_minutes_to_first_reply": round(median(waits), 1) if waits else None,
        },
        "top_kols": kols,
    }


def _personas(store: Store) -> list[str]:
    """The log's persona ids, one index seek each (not a pass over the fans)."""
    found: list[str] = []
    while True:
        (after,) = store.fetch_one("SELECT min(persona) FROM fans WHERE persona > ?",
                                   (found[-1] if found else "",))
        if after is None:
            return found
        found.append(after)


def _local_days(zone: tzinfo, now: datetime
                ) -> tuple[Callable[[str], str], Callable[[str], str]]:
    """How to count days in ``zone`` cheaply: SQL groups by the UTC hour (shifted by the
    zone's odd minutes, e.g. 30 for India), Python maps each of those few hours to its local
    day with the offset in force then (summer time included).

    Returns ``(day_of, bucket)``: ``bucket(column)`` is the SQL expression, ``day_of(hour)``
    the local day (YYYY-MM-DD) of one of its values."""
    odd = int((now.astimezone(zone).utcoffset() or timedelta()).total_seconds() // 60) % 60

    def bucket(column: str) -> str:
        if odd == 0:
            return f"substr({column}, 1, 13)"  # text, as fast as the plain day was
        return f"strftime('%Y-%m-%dT%H', {column}, '+{odd} minutes')"

    cache: dict[str, str] = {}

    def day_of(hour: str) -> str:
        if hour not in cache:
            try:
                start = datetime.strptime(hour, "%Y-%m-%dT%H").replace(tzinfo=UTC)
            except (TypeError, ValueError):  # not a timestamp the log writes: keep its day
                cache[hour] = str(hour)[:10]
            else:
                cache[hour] = (start - timedelta(minutes=odd)).astimezone(zone).date().isoformat()
        return cache[hour]

    return day_of, bucket


def _only_persona(store: Store, persona: str) -> bool:
    """Whether every fan of the log is ``persona``'s (two index look-ups)."""
    low, high = store.fetch_one("SELECT min(persona), max(persona) FROM fans")
    return low == high == persona


# -- terminal -------------------------------------------------------------------------------------


def to_text(report: dict[str, Any], width: int = TABLE_WIDTH) -> str:
    """The report as terminal tables, each fitted to ``width`` columns."""
    out: list[str] = []

    def table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
        out.append(f"\n{title}")
        if not rows:
            out.append("  " + _("(none)"))
            return
        out.extend("  " + line for line in format_table(columns, rows, max_width=width - 2))

    who = (_("persona {persona}").format(persona=report["persona"]) if report["persona"]
           else _("all personas"))
    out.append(_("brandbot report — {who}").format(who=who))
    out.append(_("since {since} · generated {generated} · days in {timezone}").format(
        since=report["since"], generated=report["generated"], timezone=report["timezone"]))
    out.append(_("fans {fans} · subscribers {subscribers} (+{subscribed} / -{unsubscribed} "
                 "since)").format(fans=report["fans"], subscribers=report["subscribers"],
                                  subscribed=report["subscribed"],
                                  unsubscribed=report["unsubscribed"]))
    table(_("Fans per stage (funnel)"), columns("stage", "fans"), report["funnel"])
    table(_("New fans per day"), columns("day", "new fans"), report["new_fans_per_day"])
    table(_("New fans by source"), columns("source", "fans"), report["new_fans_by_source"])
    table(_("Messages per day"), columns("day", "in", "out"), report["messages_per_day"])
    table(_("Top intents"), columns("intent", "messages"), report["top_intents"])
    table(_("Not understood (add these to the persona)"),
          columns("message", "times"), report["not_understood"])
    h = report["handoffs"]
    table(_("Handoffs"), columns("started", "answered", "timed out", "open now",
                                 "median min to reply"),
          [[h["started"], h["answered"], h["timed_out"], h["open_now"],
            h["median_minutes_to_first_reply"]]])
    table(_("Top KOLs"), columns("persona", "id", "fan", "channel", "direct", "2nd level",
                                 "influence", "tag"),
          [[k["persona"], k["fan_id"], k["name"], k["channel"], k["direct"], k["second"],
            k["influence"], "kol" if k["kol"] else ""] for k in report["top_kols"]])
    return "\n".join(out) + "\n"


# -- HTML -----------------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.5 system-ui,-apple-system,"PingFang SC","Microsoft YaHei",sans-serif;margin:0;
background:#faf7f2;color:#2b2b2b}
header{background:#2f4858;color:#fff;padding:18px 28px}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;opacity:.8}main{display:grid;grid-template-columns:repeat(auto-fill,
minmax(440px,1fr));gap:18px;padding:20px 28px}section{background:#fff;border-radius:10px;
padding:14px 18px;box-shadow:0 1px 3px rgba(0,0,0,.08)}h2{font-size:15px;margin:0 0 10px}
.kpis{display:flex;gap:14px;flex-wrap:wrap;padding:18px 28px 0}.kpi{background:#fff;
border-radius:10px;padding:10px 16px;box-shadow:0 1px 3px rgba(0,0,0,.08)}.kpi b{display:block;
font-size:22px}table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:3px 6px;
border-bottom:1px solid #eee}td.n{text-align:right}svg .bar{fill:#e07a5f}svg .bar2{fill:#3d5a80}
svg .bar:hover,svg .bar2:hover{opacity:.75}svg text{font-size:11px;fill:#555}
#tip{position:fixed;pointer-events:none;background:#2b2b2b;color:#fff;padding:3px 8px;
border-radius:4px;font-size:12px;display:none}.empty{color:#999}
"""

_JS = """
(function(){var tip=document.getElementById('tip');
document.querySelectorAll('[data-tip]').forEach(function(el){
el.addEventListener('mousemove',function(e){tip.textContent=el.getAttribute('data-tip');
tip.style.display='block';tip.style.left=(e.clientX+12)+'px';tip.style.top=(e.clientY+12)+'px';});
el.addEventListener('mouseleave',function(){tip.style.display='none';});});
document.body.setAttribute('data-ready','1');})();
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _hbars(rows: list[list[Any]], *, label_width: int = 150) -> str:
    """Horizontal bars: one per (label, value) row."""
    if not rows:
        return '<p class="empty">nothing yet</p>'
    top = max(r[1] for r in rows) or 1
    width, step = 420, 22
    parts = [f'<svg class="chart" viewBox="0 0 {width} {step * len(rows) + 4}" '
             f'width="100%" role="img">']
    for i, (label, value) in enumerate(r[:2] for r in rows):
        y = i * step + 2
        w = max(1.0, (width - label_width - 50) * value / top)
        short = str(label) if len(str(label)) <= 22 else str(label)[:21] + "…"
        parts.append(
            f'<text x="{label_width - 6}" y="{y + 14}" text-anchor="end">{_e(short)}</text>'
            f'<rect class="bar" x="{label_width}" y="{y}" width="{w:.1f}" height="{step - 6}" '
            f'data-tip="{_e(label)}: {value}"><title>{_e(label)}: {value}</title></rect>'
            f'<text x="{label_width + w + 4:.1f}" y="{y + 14}">{value}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _columns(rows: list[list[Any]], series: int = 1) -> str:
    """Vertical bars per day (one or two series side by side)."""
    if not rows:
        return '<p class="empty">nothing yet</p>'
    width, height, pad = 440, 170, 24
    top = max(max(r[1:1 + series]) for r in rows) or 1
    slot = (width - pad) / len(rows)
    bar = max(1.0, slot / series - 2)
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height + 20}" width="100%" role="img">',
             f'<text x="0" y="10">{top}</text>']
    for i, row in enumerate(rows):
        for s in range(series):
            value = row[1 + s]
            h = (height - 14) * value / top
            x = pad + i * slot + s * (bar + 1)
            tip = f"{row[0]}: {value}" + ((" in", " out")[s] if series > 1 else "")
            parts.append(
                f'<rect class="{"bar" if s == 0 else "bar2"}" x="{x:.1f}" y="{height - h:.1f}" '
                f'width="{bar:.1f}" height="{h:.1f}" data-tip="{_e(tip)}">'
                f'<title>{_e(tip)}</title></rect>'
            )
    parts.append(f'<text x="{pad}" y="{height + 14}">{_e(rows[0][0])}</text>')
    if len(rows) > 1:
        parts.append(f'<text x="{width}" y="{height + 14}" text-anchor="end">'
                     f'{_e(rows[-1][0])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _table(columns: list[str], rows: list[list[Any]]) -> str:
    if not rows:
        return '<p class="empty">nothing yet</p>'
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(
            f'<td class="n">{_e(v)}</td>' if isinstance(v, int | float) else f"<td>{_e(v)}</td>"
            for v in r) + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def to_html(report: dict[str, Any]) -> str:
    h = report["handoffs"]
    who = f"persona {report['persona']}" if report["persona"] else "all personas"
    kpis = [("fans", report["fans"]), ("subscribers", report["subscribers"]),
            ("new since " + report["since"], sum(r[1] for r in report["new_fans_per_day"])),
            ("handoffs", h["started"]),
            ("median min to human reply", h["median_minutes_to_first_reply"] or "—")]
    sections = [
        ("funnel", "Fans per stage (funnel)", _hbars(report["funnel"], label_width=110)),
        ("new-fans", "New fans per day", _columns(report["new_fans_per_day"])),
        ("sources", "New fans by source", _hbars(report["new_fans_by_source"])),
        ("messages", "Messages per day (in / out)",
         _columns(report["messages_per_day"], series=2)),
        ("intents", "Top intents", _hbars(report["top_intents"])),
        ("missed", "Not understood — add these to the persona",
         _table(["message", "times"], report["not_understood"])),
        ("handoffs", "Handoffs",
         _table(["started", "answered", "timed out", "open now", "median min to reply"],
                [[h["started"], h["answered"], h["timed_out"], h["open_now"],
                  h["median_minutes_to_first_reply"] or "—"]])),
        ("kols", "Top KOLs",
         _table(["persona", "fan", "channel", "direct", "2nd level", "influence", "tag"],
                [[k["persona"], k["name"], k["channel"], k["direct"], k["second"], k["influence"],
                  "kol" if k["kol"] else ""] for k in report["top_kols"]])),
    ]
    body = "".join(f'<section id="{sid}"><h2>{_e(title)}</h2>{content}</section>'
                   for sid, title, content in sections)
    kpi_html = "".join(f'<div class="kpi"><b>{_e(v)}</b>{_e(k)}</div>' for k, v in kpis)
    # The data rides along for anyone who wants it; "<" escaped so fan text cannot end the tag.
    data = json.dumps(report, ensure_ascii=False).replace("<", "\\u003c")
    return (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>brandbot report — {_e(who)}</title>"
        "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
        f"<style>{_CSS}</style></head><body>"
        f"<header><h1>brandbot report — {_e(who)}</h1><p>since {_e(report['since'])} · "
        f"generated {_e(report['generated'])}</p></header>"
        f'<div class="kpis">{kpi_html}</div><main>{body}</main><div id="tip"></div>'
        f'<script type="application/json" id="data">{data}</script>'
        f"<script>{_JS}</script></body></html>\n"
    )

"""Entity extraction: our rules against the libraries issue 11 names, on our own table.

    python bench/entities.py                              # ours only (what brandbot ships)
    python bench/entities.py --candidates /tmp/ent-cand   # + cn2an, dateparser, jionlp, recognizers

Candidates other than ours are looked up in ``--candidates DIR/<name>`` (each installed apart with
``pip install --target DIR/<name> <package>``, so that none of them enters brandbot's venv):
``cn2an``, ``dateparser``, ``jionlp``, ``recognizers-text-suite`` (which needs ``'emoji<2'`` in
the same target: its 1.0.2a2 release imports a name emoji 2 removed).

Each candidate runs in a fresh interpreter (so import time and memory are its own): import time,
the first call (lazy loading), then every expression of tests/data/entities/expressions.jsonl
and probes.jsonl ``--rounds`` times; per expression the median time; reported: accuracy (strict:
values, flags and invalid codes as the table says; "values": ignoring the past/ambiguous flags),
p50 and mean µs per expression, import ms, RSS growth (MB) and install size (MB).

A candidate covers only some kinds; "X + ours" lets X answer its kinds and our rules the rest —
the thin-layer combinations the issue asks about. Adapters are thin on purpose: they map the
library's answer to the table's shape, compute ``past`` from the value, and nothing else.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.entity_table import NOW, TZ, entity_matches, load_rows  # noqa: E402

DATE_KINDS = {"date", "time", "datetime"}
# name → (directory under --candidates, distributions making up its install, kinds it answers)
CANDIDATES: dict[str, tuple[str | None, tuple[str, ...], set[str]]] = {
    "ours": (None, ("phonenumberslite",), set()),
    "ours+cn2an": ("cn2an", ("phonenumberslite", "cn2an", "proces"), set()),
    "dateparser": ("dateparser", ("dateparser", "python-dateutil", "pytz", "regex", "tzlocal"),
                   DATE_KINDS),
    "jionlp": ("jionlp", ("jionlp", "jiojio", "zipfile36", "numpy", "PyYAML", "requests",
                          "urllib3", "idna", "charset-normalizer", "certifi"),
               DATE_KINDS | {"phone"}),
    "recognizers": ("recognizers-text-suite",
                    ("recognizers-text-suite", "recognizers-text", "recognizers-text-date-time",
                     "recognizers-text-number", "recognizers-text-number-with-unit",
                     "recognizers-text-sequence", "recognizers-text-choice", "datedelta",
                     "emoji", "grapheme", "multipledispatch", "regex"),
                    DATE_KINDS | {"number", "phone", "email"}),
}
# Installed with brandbot anyway (not counted as "new" install size).
ALREADY_IN_PROJECT = {"numpy", "pyyaml", "requests", "urllib3", "idna", "charset-normalizer",
                      "certifi", "tzdata", "opencc"}


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


# --- adapters (run inside the worker) ---------------------------------------------------------


def _lang(locale: str) -> str:
    return "zh" if locale.startswith("zh") else "en"


def _day_first(locale: str) -> bool:
    return locale in ("en-GB", "zh-HK")  # the table's day/month locales


def _when_json(kind: str, value: Any) -> dict[str, Any]:
    """Table-shaped answer for a library's date/time, with ``past`` computed against NOW."""
    import datetime as dt

    if kind == "date":
        day = value.date()
        return {"kind": "date", "value": day.isoformat(), "past": day < NOW.date()}
    if kind == "time":
        return {"kind": "time", "value": value.strftime("%H:%M")}
    return {"kind": "datetime", "value": value.strftime("%Y-%m-%dT%H:%M"),
            "past": value < NOW if isinstance(value, dt.datetime) else False}


_TODAY_WORDS = ("今", "today", "tonight")
_REGION = {"zh-CN": "CN", "zh-TW": "TW", "zh-HK": "HK", "en-US": "US", "en-GB": "GB"}


def _phone_json(text: str, locale: str) -> dict[str, Any]:
    """A library's phone match, validated and written E.164 by phonenumbers (the thin layer)."""
    import phonenumbers

    for region in dict.fromkeys((_REGION.get(locale, "CN"), "CN")):
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            return {"kind": "phone", "value": e164}
    return {"kind": "phone", "value": None, "invalid": "bad_phone"}


def _dateparser_adapter():
    from dateparser.date import DateDataParser
    from dateparser.search import search_dates

    def run(text: str, locale: str) -> list[dict[str, Any]]:
        lang = _lang(locale)
        settings = {"RELATIVE_BASE": NOW, "PREFER_DATES_FROM": "future",
                    "DATE_ORDER": "DMY" if _day_first(locale) else "MDY",
                    "RETURN_TIME_AS_PERIOD": True}
        parser = DateDataParser(languages=[lang], settings=settings)
        found = search_dates(text, languages=[lang], settings=settings) or []
        if not found:  # search_dates misses some whole-message dates parse() reads (7:30pm)
            whole = parser.get_date_data(text).date_obj
            found = [(text, whole)] if whole else []
        out = []
        for span, value in found:
            period = parser.get_date_data(span).period
            if period == "time":
                today_said = any(w in span.lower() for w in _TODAY_WORDS)
                kind = "time" if value.date() == NOW.date() and not today_said else "datetime"
            else:
                kind = "date"
            out.append(_when_json(kind, value))
        return out

    return run


def _jionlp_adapter():
    import datetime as dt

    import jionlp

    base = NOW.timestamp()

    def run(text: str, locale: str) -> list[dict[str, Any]]:
        out = []
        for item in jionlp.ner.extract_time(text, time_base=base, with_parsing=True):
            detail = item.get("detail") or {}
            span = detail.get("time") or []
            if len(span) != 2 or not isinstance(span[0], str):
                continue
            start = dt.datetime.fromisoformat(span[0])
            whole_day = span[0].endswith("00:00:00") and span[1].endswith("23:59:59")
            if whole_day:
                kind = "date"
            elif start.date() == NOW.date() and not any(w in item["text"] for w in _TODAY_WORDS):
                kind = "time"
            else:
                kind = "datetime"
            out.append(_when_json(kind, start))
        for item in jionlp.extract_phone_number(text, detail=True):
            out.append(_phone_json(item["text"], locale))
        return out

    return run


def _recognizers_adapter():
    import datetime as dt
    import warnings

    warnings.simplefilter("ignore")
    from recognizers_date_time import recognize_datetime
    from recognizers_number import recognize_number
    from recognizers_sequence import recognize_email, recognize_phone_number
    from recognizers_text import Culture

    naive_now = NOW

    def run(text: str, locale: str) -> list[dict[str, Any]]:
        culture = Culture.Chinese if locale.startswith("zh") else Culture.English
        out = []
        # spans of dates/phones/emails: the digits in them are not numbers of their own
        taken: list[tuple[int, int]] = []
        for m in recognize_datetime(text, culture, reference=naive_now):
            taken.append((m.start, m.end))
            values = (m.resolution or {}).get("values") or []
            v = values[-1] if values else {}
            kind, raw = v.get("type"), v.get("value")
            if kind not in ("date", "time", "datetime") or raw in (None, "not resolved"):
                out.append({"kind": kind or "date", "value": None, "invalid": "unresolved"})
            elif kind == "time":
                out.append({"kind": "time", "value": raw[:5]})
            else:
                out.append(_when_json(kind, dt.datetime.fromisoformat(raw)))
        for m in recognize_phone_number(text, Culture.English):
            taken.append((m.start, m.end))
            out.append(_phone_json(m.text, locale))
        for m in recognize_email(text, Culture.English):
            taken.append((m.start, m.end))
            out.append({"kind": "email", "value": m.text.lower()})
        for m in recognize_number(text, culture):
            if any(a <= m.start and m.end <= b for a, b in taken):
                continue
            raw = (m.resolution or {}).get("value")
            try:
                value = float(raw)
            except (TypeError, ValueError):
                continue
            out.append({"kind": "number", "value": int(value) if value.is_integer() else value})
        return out

    return run


def _ours_adapter(use_cn2an: bool = False):
    from bot import entities

    if use_cn2an:
        import cn2an

        from bot.entities import text as entity_text

        def via_cn2an(numeral: str) -> int | None:
            try:
                value = cn2an.cn2an(numeral, "smart")
            except (ValueError, KeyError, IndexError):
                return None
            return int(value) if float(value).is_integer() else None

        entity_text.zh_number = via_cn2an

    def run(text: str, locale: str) -> list[dict[str, Any]]:
        return [e.to_json() for e in entities.extract(text, now=NOW, tz=TZ, locale=locale)]

    return run


def _combined(library, kinds: set[str]):
    """The library for ``kinds``, our rules for every other kind."""
    ours = _ours_adapter()

    def run(text: str, locale: str) -> list[dict[str, Any]]:
        return ([a for a in library(text, locale) if a.get("kind") in kinds]
                + [a for a in ours(text, locale) if a["kind"] not in kinds])

    return run


def _worker(name: str, combined: bool, rounds: int) -> dict[str, Any]:
    rss_before = _rss_mb()
    started = time.perf_counter()
    factory = {"ours": _ours_adapter, "ours+cn2an": lambda: _ours_adapter(True),
               "dateparser": _dateparser_adapter, "jionlp": _jionlp_adapter,
               "recognizers": _recognizers_adapter}[name]
    run = factory()
    if combined:
        run = _combined(run, CANDIDATES[name][2])
    import_ms = (time.perf_counter() - started) * 1000
    tables = {"table": load_rows("expressions.jsonl"), "probes": load_rows("probes.jsonl")}
    started = time.perf_counter()
    _safe(run, "明天晚上7点4个人", "zh-CN")
    first_ms = (time.perf_counter() - started) * 1000
    result: dict[str, Any] = {"import_ms": import_ms, "first_call_ms": first_ms}
    all_times = []
    for table, rows in tables.items():
        strict = values = 0
        failures = []
        per_kind: dict[str, list[int]] = {}
        for row in rows:
            answers = _safe(run, row["text"], row["locale"])
            samples = []
            for _ in range(rounds):
                t0 = time.perf_counter_ns()
                _safe(run, row["text"], row["locale"])
                samples.append((time.perf_counter_ns() - t0) / 1000)
            all_times.append(statistics.median(samples))
            ok = _correct(answers, row["expect"], flags=True)
            strict += ok
            values += _correct(answers, row["expect"], flags=False)
            for kind in {e["kind"] for e in row["expect"]} or {"none"}:
                per_kind.setdefault(kind, [0, 0])
                per_kind[kind][0] += ok
                per_kind[kind][1] += 1
            if not ok:
                failures.append(row["line"])
        result[table] = {"n": len(rows), "strict": strict, "values": values,
                         "per_kind": per_kind, "failures": failures}
    result["p50_us"] = statistics.median(all_times)
    result["mean_us"] = statistics.fmean(all_times)
    result["rss_mb"] = _rss_mb() - rss_before
    return result


def _safe(run, text: str, locale: str) -> list[dict[str, Any]]:
    try:
        return run(text, locale)
    except Exception as exc:  # a library raising counts as a wrong answer, not a crash
        return [{"kind": "error", "value": repr(exc)[:80]}]


def _correct(answers: list[dict[str, Any]], expect: list[dict[str, Any]], flags: bool) -> bool:
    if not flags:
        answers = [{k: v for k, v in a.items() if k not in ("past", "ambiguous")} for a in answers]
        expect = [{k: v for k, v in e.items() if k not in ("past", "ambiguous")} for e in expect]
    left = list(answers)
    for want in expect:
        hit = next((a for a in left if entity_matches(a, want)), None)
        if hit is None:
            return False
        left.remove(hit)
    return not left


def install_mb(distributions: tuple[str, ...], where: Path | None) -> tuple[float, float]:
    """(total MB, MB not already installed with brandbot) of the distributions' files."""
    paths = [str(where)] if where else sys.path
    total = new = 0
    for name in distributions:
        try:
            dist = next(iter(metadata.distributions(name=name, path=paths)))
        except StopIteration:
            continue
        size = sum((f.size or 0) for f in dist.files or ())
        if not size:  # RECORD without sizes: measure the files
            size = sum(Path(dist.locate_file(f)).stat().st_size for f in dist.files or ()
                       if Path(dist.locate_file(f)).is_file())
        total += size
        if name.lower() not in ALREADY_IN_PROJECT:
            new += size
    return total / 2**20, new / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidates", type=Path, help="directory with one pip --target each")
    parser.add_argument("--rounds", type=int, default=5, help="timed runs per expression")
    parser.add_argument("--only", nargs="*", help="candidate names (default: all available)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--combined", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print the raw results as JSON")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(_worker(args.worker, args.combined, args.rounds)))
        return
    runs: list[tuple[str, bool]] = []
    for name, (folder, _dists, kinds) in CANDIDATES.items():
        if args.only and name not in args.only:
            continue
        if folder and not (args.candidates and (args.candidates / folder).is_dir()):
            print(f"skip {name}: not installed under --candidates", file=sys.stderr)
            continue
        runs.append((name, False))
        if kinds:
            runs.append((name, True))
    results = {}
    for name, combined in runs:
        folder, dists, _kinds = CANDIDATES[name]
        env = dict(os.environ)
        where = args.candidates / folder if folder else None
        if where:
            env["PYTHONPATH"] = os.pathsep.join([str(where), str(ROOT)])
        cmd = [sys.executable, __file__, "--worker", name, "--rounds", str(args.rounds)]
        if combined:
            cmd.append("--combined")
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        label = f"{name} + ours" if combined else name
        if proc.returncode:
            print(f"{label}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
            continue
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        result["install_mb"], result["new_mb"] = install_mb(dists, where)
        if name == "ours+cn2an":
            result["install_mb"] += install_mb(("phonenumberslite",), None)[0]
            result["new_mb"] += install_mb(("phonenumberslite",), None)[1]
        if name == "ours" or combined:
            extra = install_mb(("phonenumberslite",), None) if name != "ours" else (0, 0)
            result["install_mb"] += extra[0]
            result["new_mb"] += extra[1]
        results[label] = result
    if args.json:
        print(json.dumps(results, indent=1))
        return
    print("| candidate | table (270) strict | values only | probes (60) | p50 µs | mean µs | "
          "import ms | first call ms | RSS +MB | install MB (new) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for label, r in results.items():
        t, p = r["table"], r["probes"]
        print(f"| {label} | {t['strict'] / t['n']:.1%} | {t['values'] / t['n']:.1%} | "
              f"{p['strict'] / p['n']:.1%} | {r['p50_us']:.0f} | {r['mean_us']:.0f} | "
              f"{r['import_ms']:.0f} | {r['first_call_ms']:.0f} | {r['rss_mb']:.1f} | "
              f"{r['install_mb']:.1f} ({r['new_mb']:.1f}) |")
    print()
    for label, r in results.items():
        kinds = ", ".join(f"{k} {ok}/{n}" for k, (ok, n) in sorted(r["table"]["per_kind"].items()))
        print(f"- {label}: {kinds}")


if __name__ == "__main__":
    main()

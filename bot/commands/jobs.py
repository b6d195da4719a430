"""``brandbot jobs``: what the daemon has scheduled, ran and gave up on (bot/relations/jobs.py)."""

from __future__ import annotations

import json

import click

from bot.commands.common import DB_HELP, DEFAULT_DB, open_store, print_table
from bot.i18n import N_, _, is_chinese, lang_option, pgettext

# What a job's status and kind are called in a listing (English: the stored word itself).
STATUS_NAMES = {"pending": N_("pending"), "running": N_("running"), "done": N_("done"),
                "failed": N_("failed"), "cancelled": N_("cancelled")}
KIND_NAMES = {"handoff_expire": N_("handoff_expire"), "calendar_topic": N_("calendar_topic"),
              "prune_jobs": N_("prune_jobs")}


@click.group("jobs")
def jobs() -> None:
    """Scheduled work the daemon runs by itself (no cron) / 守护进程自动执行的定时任务."""


@jobs.command("list")
@click.option("--db", default=DEFAULT_DB, show_default=True, help=DB_HELP)
@click.option("--status", type=click.Choice(["pending", "running", "done", "failed",
                                             "cancelled"]),
              help="Only jobs in this state.")
@click.option("--kind", help="Only jobs of this kind (calendar_topic, handoff_expire…).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines.")
@lang_option(help="Language of the output (default: zh when LANG/LC_ALL start with zh).")
def jobs_list(db, status, kind, as_json, lang) -> None:
    """List scheduled jobs: when (UTC), state, attempts, and why a failed one failed.

    Example: LANG=zh_CN.UTF-8 brandbot jobs list --status failed
    """
    from bot.relations.jobs import list_jobs

    store = open_store(db)
    try:
        rows = list_jobs(store, status, kind)
    finally:
        store.close()
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, ensure_ascii=False))
        return
    columns = [pgettext("column", "id"), pgettext("column", "kind"), _("run at (UTC)"),
               pgettext("column", "status"), _("attempts"), _("runs"),
               pgettext("column", "error")]
    table = []
    for r in rows:
        kind_name = _(KIND_NAMES[r["kind"]]) if r["kind"] in KIND_NAMES else r["kind"]
        shown_kind = f"{kind_name} ({r['kind']})" if is_chinese() else r["kind"]
        table.append([
            r["id"], shown_kind, r["run_at"][:19].replace("T", " "),
            _(STATUS_NAMES[r["status"]]) if r["status"] in STATUS_NAMES else r["status"],
            f"{r['attempts']}/{r['max_attempts']}", r["runs"], (r["last_error"] or "")[:80],
        ])
    print_table(columns, table)
    failed = sum(r["status"] == "failed" for r in rows)
    shown = _("{count} job(s)").format(count=len(rows))
    if failed:
        shown += _(", {failed} failed (see the error column)").format(failed=failed)
    click.echo(shown)

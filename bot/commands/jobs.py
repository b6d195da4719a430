"""``brandbot jobs``: what the daemon has scheduled, ran and gave up on (bot/relations/jobs.py)."""

from __future__ import annotations

import json

import click

from bot.commands.bilingual import say
from bot.commands.common import DB_HELP, DEFAULT_DB, open_store, print_table

STATUS_ZH = {"pending": "待运行", "running": "运行中", "done": "已完成", "failed": "已失败",
             "cancelled": "已取消"}
KIND_ZH = {"handoff_expire": "转人工超时归还", "calendar_topic": "日历话题群发",
           "prune_jobs": "清理旧任务记录"}


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
@click.option("--lang", type=click.Choice(["zh", "en"]),
              help="Language of the output (default: zh when LANG/LC_ALL start with zh).")
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
    zh = say("zh", "en", lang) == "zh"
    columns = (["编号", "类型", "运行时间 (UTC)", "状态", "尝试", "已运行", "错误"] if zh else
               ["id", "kind", "run at (UTC)", "status", "attempts", "runs", "error"])
    table = []
    for r in rows:
        shown_kind = f"{KIND_ZH.get(r['kind'], r['kind'])} ({r['kind']})" if zh else r["kind"]
        table.append([
            r["id"], shown_kind, r["run_at"][:19].replace("T", " "),
            STATUS_ZH.get(r["status"], r["status"]) if zh else r["status"],
            f"{r['attempts']}/{r['max_attempts']}", r["runs"], (r["last_error"] or "")[:80],
        ])
    print_table(columns, table)
    failed = sum(r["status"] == "failed" for r in rows)
    failed_zh = f"，{failed} 个已失败（见“错误”列）" if failed else ""
    failed_en = f", {failed} failed (see the error column)" if failed else ""
    click.echo(say(f"共 {len(rows)} 个任务{failed_zh}", f"{len(rows)} job(s){failed_en}", lang))

"""How the daemon runs turns: on its event loop, sharing commits, never blocking on the log."""

from __future__ import annotations

import asyncio
import sqlite3
import threading

from bot.messages import FanRef, Inbound
from tests.conftest import run_async


def inbound(fan: str, text: str = "几点开门", msg_id: str | None = None) -> Inbound:
    return Inbound(FanRef("web", fan), text=text, platform_msg_id=msg_id)


def logged(daemon) -> int:
    conn = sqlite3.connect(daemon.settings.db)
    try:
        return conn.execute("SELECT count(*) FROM messages WHERE direction = 'in'").fetchone()[0]
    finally:
        conn.close()


def test_turns_of_one_moment_share_a_commit_and_are_answered_after_it(daemon):
    commits: list[int] = []
    real_commit = daemon.store.commit_group

    def counting_commit():
        commits.append(daemon.store.in_group)
        real_commit()

    daemon.store.commit_group = counting_commit

    async def scenario():
        return await asyncio.gather(*(daemon.run_turn(inbound(f"fan{n}"), "tiny")
                                      for n in range(8)))

    answers = run_async(scenario())
    assert all(replies for replies in answers)
    assert commits.count(True) == 1  # eight turns, one COMMIT
    assert logged(daemon) == 8


def test_a_cancelled_request_does_not_cancel_the_other_turns_of_its_commit(daemon):
    async def scenario():
        turns = [asyncio.create_task(daemon.run_turn(inbound(f"fan{n}"), "tiny"))
                 for n in range(3)]
        await asyncio.sleep(0)  # all three ran and wait for their shared commit
        turns[0].cancel()  # e.g. the client went away
        return await asyncio.gather(*turns, return_exceptions=True)

    first, *others = run_async(scenario())
    assert isinstance(first, asyncio.CancelledError)
    assert all(isinstance(r, list) and r for r in others), others
    assert logged(daemon) == 3  # the cancelled one was committed too: a retry is answered


def test_a_brief_hold_by_one_of_our_threads_is_waited_for_on_the_loop(daemon):
    """A thread of ours writing for a moment must not push every later turn into threads."""
    held = threading.Event()
    release = threading.Event()

    def brief_write():
        with daemon.store.transaction() as conn:
            conn.execute("INSERT INTO events (fan_id, kind, created_at) VALUES (NULL, 'x', 'n')")
            held.set()
            release.wait(5)

    async def scenario():
        writer = threading.Thread(target=brief_write)
        writer.start()
        held.wait(5)
        turns = [asyncio.create_task(daemon.run_turn(inbound(f"fan{n}"), "tiny"))
                 for n in range(32)]
        await asyncio.sleep(0.01)
        release.set()
        answers = await asyncio.gather(*turns)
        writer.join()
        return answers

    answers = run_async(scenario())
    assert all(answers)
    assert daemon.metrics.turns_waited._value.get() == 0
    assert logged(daemon) == 32


def test_another_process_writing_sends_the_turn_to_a_thread_and_the_loop_stays_free(daemon):
    other = sqlite3.connect(daemon.settings.db, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")

    async def scenario():
        turn = asyncio.create_task(daemon.run_turn(inbound("fan"), "tiny"))
        ticks = 0
        # The loop keeps running (this coroutine ticks) until the turn has gone to a thread.
        while daemon.metrics.turns_waited._value.get() == 0:
            await asyncio.sleep(0.01)
            ticks += 1
        assert not turn.done()  # it waits there for the other process's commit
        other.execute("COMMIT")
        return ticks, await turn

    ticks, replies = run_async(scenario())
    other.close()
    assert ticks >= 1 and replies
    assert daemon.metrics.turns_waited._value.get() == 1
    assert logged(daemon) == 1

"""A local fake of the Telegram Bot API over real HTTP, for tests and the bench.

python-telegram-bot is pointed at it with ``base_url`` (``fake.base_url``), so the real library,
its HTTP client and our adapter run unmodified; only Telegram's servers are replaced.

What it implements (the subset brandbot uses, with Telegram's semantics as documented in
docs/channels/protocol-notes.md T1-T4):

* ``getMe``, ``deleteWebhook`` (``drop_pending_updates``), ``setWebhook`` (then delivers every
  pushed update to the URL with the ``X-Telegram-Bot-Api-Secret-Token`` header), ``getWebhookInfo``;
* ``getUpdates``: ``offset`` confirms everything below it, ``limit``, long polling ``timeout``,
  ``allowed_updates`` (sticky when omitted; the empty list means "all but chat_member and
  reactions"), 409 Conflict while a webhook is set;
* ``sendMessage`` (400 for empty or over-4096-character text, 403 for chats that blocked the bot;
  ``message_thread_id`` posts in a forum topic: 400 for a topic that does not exist or is closed)
  and ``answerCallbackQuery``;
* forum topics: ``createForumTopic`` (400 unless the chat is a supergroup, i.e. a negative id),
  ``closeForumTopic``; ``topics`` maps ``(chat_id, thread_id)`` to ``{"name", "closed"}``;
  ``topic_message(group, thread, text)`` pushes what an operator writes in a topic;
* injectable failures: ``fail("sendMessage", status=429, retry_after=1, chat_id=…, times=…)``;
* a record of every call (method, parameters, monotonic time) in ``calls``.

In process (tests): ``async with FakeTelegram() as fake: ...`` in the test's event loop.
As a process (bench): ``python -m tests.fakes.telegram_api --port 0`` prints ``port N`` and adds a
control API: ``POST /_fake/push`` (a JSON list of updates), ``GET /_fake/stats``,
``POST /_fake/reset``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import socket
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

TOKEN = "123456:AAFakeTokenForTestsOnly-xyz_0123456789"
BOT_ID = 123456
BOT_USERNAME = "brand_test_bot"
MAX_TEXT = 4096
# What an empty allowed_updates list means on Telegram's side.
_NOT_BY_DEFAULT = {"chat_member", "message_reaction", "message_reaction_count"}


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float  # time.monotonic()
    status: int = 200


@dataclass
class Failure:
    method: str
    status: int
    description: str
    retry_after: float | None = None
    chat_id: int | None = None
    times: int = 1


@dataclass
class Delivery:
    update_id: int
    status: int | None
    error: str | None = None


@dataclass
class _State:
    updates: list[dict[str, Any]] = field(default_factory=list)
    forced: set[int] = field(default_factory=set)


def _decode(value: str) -> Any:
    """PTB form-encodes scalars as text and complex values as JSON."""
    if value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def update_kind(update: dict[str, Any]) -> str:
    """The update's type: the one key besides ``update_id``."""
    return next((k for k in update if k != "update_id"), "")


class FakeTelegram:
    def __init__(self, token: str = TOKEN, *, username: str = BOT_USERNAME, bot_id: int = BOT_ID):
        self.token = token
        self.username = username
        self.bot_id = bot_id
        self.calls: list[Call] = []
        self.deliveries: list[Delivery] = []
        self.failures: list[Failure] = []
        self.blocked: set[int] = set()
        self.webhook: dict[str, Any] | None = None
        self.allowed_updates: list[str] | None = None
        self.port = 0
        self.topics: dict[tuple[int, int], dict[str, Any]] = {}
        self._state = _State()
        self._ids = itertools.count(1000)
        self._message_ids = itertools.count(1)
        self._changed = asyncio.Event()
        self._server: uvicorn.Server | None = None
        self._serving: asyncio.Task | None = None
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task] = set()
        self.app = Starlette(
            routes=[
                Route("/_fake/push", self._control_push, methods=["POST"]),
                Route("/_fake/stats", self._control_stats, methods=["GET"]),
                Route("/_fake/reset", self._control_reset, methods=["POST"]),
                Route("/bot{token}/{method}", self._api, methods=["GET", "POST"]),
            ]
        )

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """What PTB's ``base_url`` takes (it appends the token)."""
        return f"http://127.0.0.1:{self.port}/bot"

    async def start(self, port: int = 0) -> FakeTelegram:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        # The test or bench owns the signals, not the fake.
        self._server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
        self._client = httpx.AsyncClient(timeout=5)
        self._serving = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._serving.done():
                await self._serving
            await asyncio.sleep(0.002)
        return self

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._server is not None:
            self._server.should_exit = True
            self._changed.set()  # wake long polls so the server can finish them
            with contextlib.suppress(asyncio.CancelledError):
                await self._serving
        if self._client is not None:
            await self._client.aclose()

    async def __aenter__(self) -> FakeTelegram:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- what tests do -----------------------------------------------------------------------

    def push(self, update: dict[str, Any], *, force: bool = False) -> dict[str, Any]:
        """Queue an update from "Telegram"; ``update_id`` is assigned unless given.

        ``force`` delivers it even if ``allowed_updates`` excludes its type (as when another
        program set different allowed updates before, or Telegram adds a type).
        """
        update = dict(update)
        update.setdefault("update_id", next(self._ids))
        if self.webhook is not None:
            self._deliver(update)
            return update
        self._state.updates.append(update)
        if force:
            self._state.forced.add(update["update_id"])
        self._wake()
        return update

    def push_message(
        self,
        chat_id: int,
        text: str | None = None,
        *,
        kind: str = "message",
        user_id: int | None = None,
        first_name: str = "Fan",
        chat_type: str = "private",
        title: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Push a message update (``kind``: message, edited_message, channel_post...)."""
        return self.push({kind: self.message(chat_id, text, user_id=user_id,
                                             first_name=first_name, chat_type=chat_type,
                                             title=title, **fields)})

    def message(
        self,
        chat_id: int,
        text: str | None = None,
        *,
        user_id: int | None = None,
        first_name: str = "Fan",
        chat_type: str = "private",
        title: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        chat: dict[str, Any] = {"id": chat_id, "type": chat_type}
        if chat_type == "private":
            chat["first_name"] = first_name
        else:
            chat["title"] = title or "A group"
        msg: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": chat,
        }
        if chat_type != "channel":
            uid = user_id if user_id is not None else chat_id
            msg["from"] = {"id": uid, "is_bot": False, "first_name": first_name,
                           "language_code": "en"}
        if text is not None:
            msg["text"] = text
            if text.startswith("/"):
                command = text.split()[0]
                msg["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        msg.update(fields)
        return msg

    def topic_message(self, group_id: int, thread_id: int, text: str | None, *,
                      user_id: int = 777, first_name: str = "Operator",
                      **fields: Any) -> dict[str, Any]:
        """Push a message an operator wrote in forum topic ``thread_id`` of ``group_id``."""
        msg = self.message(group_id, text, user_id=user_id, first_name=first_name,
                           chat_type="supergroup", title="Operators", is_topic_message=True,
                           message_thread_id=thread_id, **fields)
        msg["chat"]["is_forum"] = True
        return self.push({"message": msg})

    def in_topic(self, chat_id: int, thread_id: int) -> list[str]:
        """Texts the bot posted in one forum topic."""
        return [c.params["text"] for c in self.sent(chat_id)
                if str(c.params.get("message_thread_id", "")) == str(thread_id)]

    def member_update(self, chat_id: int, old: str, new: str) -> dict[str, Any]:
        """A ``my_chat_member`` update: the bot's status in the chat changed (kicked = blocked)."""
        user = {"id": chat_id, "is_bot": False, "first_name": "Fan"}
        bot = {"id": self.bot_id, "is_bot": True, "first_name": "Brand",
               "username": self.username}
        return self.push(
            {
                "my_chat_member": {
                    "chat": {"id": chat_id, "type": "private", "first_name": "Fan"},
                    "from": user,
                    "date": int(time.time()),
                    "old_chat_member": {"status": old, "user": bot}
                    | ({"until_date": 0} if old == "kicked" else {}),
                    "new_chat_member": {"status": new, "user": bot}
                    | ({"until_date": 0} if new == "kicked" else {}),
                }
            }
        )

    def fail(
        self,
        method: str = "sendMessage",
        *,
        status: int,
        description: str | None = None,
        retry_after: float | None = None,
        chat_id: int | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` matching calls with an error instead."""
        default = {
            400: "Bad Request: message text is empty",
            403: "Forbidden: bot was blocked by the user",
            429: f"Too Many Requests: retry after {retry_after}",
            500: "Internal Server Error",
            502: "Bad Gateway",
        }
        self.failures.append(
            Failure(method, status, description or default.get(status, "Error"), retry_after,
                    chat_id, times)
        )

    def sent(self, chat_id: int | None = None) -> list[Call]:
        """Successful sendMessage calls, optionally to one chat."""
        return [
            c for c in self.calls
            if c.method == "sendMessage" and c.status == 200
            and (chat_id is None or int(c.params["chat_id"]) == chat_id)
        ]

    def texts(self, chat_id: int | None = None) -> list[str]:
        return [c.params["text"] for c in self.sent(chat_id)]

    def methods(self) -> list[str]:
        return [c.method for c in self.calls]

    async def wait_for(self, condition, timeout: float = 20.0, what: str = "condition") -> None:
        """Poll ``condition()`` until true; fail with ``what`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}; "
                                     f"calls: {self.methods()[-20:]}")
            await asyncio.sleep(0.005)

    # -- the Bot API -------------------------------------------------------------------------

    async def _params(self, request: Request) -> dict[str, Any]:
        body = (await request.body()).decode("utf-8")
        params: dict[str, Any] = dict(request.query_params)
        if request.headers.get("content-type", "").startswith("application/json") and body:
            params.update(json.loads(body))
        elif body:
            params.update({k: _decode(v) for k, v in parse_qsl(body, keep_blank_values=True)})
        return params

    async def _api(self, request: Request) -> JSONResponse:
        method = request.path_params["method"]
        params = await self._params(request)
        call = Call(method, params, time.monotonic())
        self.calls.append(call)
        if request.path_params["token"] != self.token:
            return self._error(call, 401, "Unauthorized")
        failure = self._failure(method, params)
        if failure is not None:
            extra = {"retry_after": failure.retry_after} if failure.retry_after else None
            return self._error(call, failure.status, failure.description, extra)
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return self._error(call, 404, "Not Found: method not found")
        return await handler(call, params)

    def _failure(self, method: str, params: dict[str, Any]) -> Failure | None:
        for failure in self.failures:
            if failure.method != method:
                continue
            if failure.chat_id is not None and str(params.get("chat_id")) != str(failure.chat_id):
                continue
            failure.times -= 1
            if failure.times <= 0:
                self.failures.remove(failure)
            return failure
        return None

    @staticmethod
    def _ok(result: Any) -> JSONResponse:
        return JSONResponse({"ok": True, "result": result})

    @staticmethod
    def _error(call: Call, status: int, description: str,
               parameters: dict[str, Any] | None = None) -> JSONResponse:
        call.status = status
        body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if parameters:
            body["parameters"] = parameters
        return JSONResponse(body, status_code=status)

    def _me(self) -> dict[str, Any]:
        return {"id": self.bot_id, "is_bot": True, "first_name": "Brand",
                "username": self.username, "can_join_groups": True,
                "can_read_all_group_messages": False, "supports_inline_queries": False}

    async def _m_getMe(self, call: Call, params: dict[str, Any]) -> JSONResponse:
        return self._ok(self._me())

    async def _m_deleteWebhook(self, call: Call, params: dict[str, Any]) -> JSONResponse:
        self.webhook = None
        if str(params.get("drop_pending_updates", "")).lower() == "true":
            self._state.updates.clear()
        return self._ok(True)

    async def _m_setWebhook(self, call: Call, params: dict[str, Any]) -> JSONResponse:
        url = params.get("url", "")
        if not url:
            return await self._m_deleteWebhook(call, params)
        if "allowed_updates" in params:
            self.allowed_updates = params["allowed_updates"]
        self.webhook = {"url": url, "secret_token": params.get("secret_token")}
        # Whatever was waiting for getUpdates now goes to the webhook, as on Telegram.
        pending, self._state.updates = self._state.updates, []
        for update in pending:
            self._deliver(update)
        return self._ok(True)

    async def _m_getWebhookInfo(self, call: Call, params: dict[str, Any]) -> JSONResponse:
        return self._ok({"url": (self.webhook or {}).get("url", ""),
                         "has_custom_certificate": False,
                         "pending_update_count": len(self._state.updates)})

    async def _m_getUpdates(self, call: Call, params: dict[str, Any]) -> JSONResponse:
        if self.webhook is not None:
            return self._error(call, 409, "Conflict: can't use getUpdates method while webhook "
                                          "is active; use deleteWebhook to delete the webhook "
                                          "first")
        if "allowed_updates" in params:
            self.allowed_updates = params["allowed_updates"]  # sticky, as on Telegram
        offset = int(params.get("offset") or 0)
        limit = max(1, min(100, int(params.get("limit") or 100)))
        timeout = float(params.get("timeout") or 0)
        if offset > 0:  # confirms every update below it
            self._state.updates = [u for u in self._state.updates if u["update_id"] >= offset]
        deadline = time.monotonic() + timeout
        while True:
            self._state.updates = [u for u in self._state.updates if self._allowed(u)]
            ready = self._state.updates[:limit]
            remaining = deadline - time.monotonic()
            if ready or remaining <= 0 or (self._server and self._server.should_exit):
                return self._ok(ready)
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

    def _allowed(self, update: dict[str, Any]) -> bool:
        if update["update_id"] in self._state.forced:
            return True
        allowed = self.allowed_updates
        kind = update_kind(update)
        if allowed is None or allowed == []:
            return kind not in _NOT_BY_DEFAULT
        return kind in allowed

    async def _m_sendMessage(self, call: Call, params: dict[str, Any]) -> JSONResponse:
        text = str(params.get("text", ""))
        chat_id = int(params["chat_id"])
        if chat_id in self.blocked:
            return self._error(call, 403, "Forbidden: bot was blocked by the user")
        if not text.strip():
            return self._error(call, 400, "Bad Request: message text is empty")
        if len(text.encode("utf-16-le")) // 2 > MAX_TEXT:
            return self._error(call, 400, "Bad Request: message is too long")
        chat = {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"}
        if chat_id < 0:
            chat["title"] = "A group"
        else:
            chat["first_name"] = "Fan"
        result = {"message_id": next(self._message_ids), "date": int(time.time()),
                  "chat": chat, "from": self._me(), "text": text}
        thread = params.get("message_thread_id")
        if thread is not None:
            topic = self.topics.get((chat_id, int(thread)))
            if topic is None:
                return self._error(call, 400, "Bad Request: message thread not found")
            if topic["closed"]:
                return self._error(call, 400, "Bad Request: TOPIC_CLOSED")
            chat["is_forum"] = True
            result.update(message_thread_id=int(thread), is_topic_message=True)
        return self._ok(result)

    async def _m_createForumTopic(self, call: Call, params: dict[str, Any]) -> JSONResponse:
        chat_id = int(params["chat_id"])
        name = str(params.get("name", ""))
        if chat_id > 0:
            return self._error(call, 400, "Bad Request: the chat is not a forum")
        if not 1 <= len(name) <= 128:
            return self._error(call, 400, "Bad Request: TOPIC_TITLE_EMPTY" if not name
                               else "Bad Request: topic name is too long")
        thread_id = next(self._message_ids)  # a topic's id is the id of its first message
        self.topics[(chat_id, thread_id)] = {"name": name, "closed": False}
        return self._ok({"message_thread_id": thread_id, "name": name, "icon_color": 7322096})

    async def _m_closeForumTopic(self, call: Call, params: dict[str, Any]) -> JSONResponse:
        topic = self.topics.get((int(params["chat_id"]), int(params["message_thread_id"])))
        if topic is None:
            return self._error(call, 400, "Bad Request: message thread not found")
        if topic["closed"]:
            return self._error(call, 400, "Bad Request: TOPIC_NOT_MODIFIED")
        topic["closed"] = True
        return self._ok(True)

    async def _m_answerCallbackQuery(self, call: Call, params: dict[str, Any]) -> JSONResponse:
        return self._ok(True)

    # -- webhook delivery ----------------------------------------------------------------------

    def _deliver(self, update: dict[str, Any]) -> None:
        task = asyncio.get_running_loop().create_task(self._post(update))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post(self, update: dict[str, Any]) -> None:
        assert self.webhook is not None and self._client is not None
        headers = {}
        if self.webhook.get("secret_token"):
            headers["X-Telegram-Bot-Api-Secret-Token"] = self.webhook["secret_token"]
        try:
            response = await self._client.post(self.webhook["url"], json=update, headers=headers)
            self.deliveries.append(Delivery(update["update_id"], response.status_code))
        except httpx.HTTPError as exc:
            self.deliveries.append(Delivery(update["update_id"], None, repr(exc)))

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # -- control API (bench, other processes) -------------------------------------------------

    async def _control_push(self, request: Request) -> JSONResponse:
        updates = json.loads(await request.body())
        for update in updates:
            self.push(update)
        return JSONResponse({"pushed": len(updates)})

    async def _control_stats(self, request: Request) -> JSONResponse:
        counts: dict[str, int] = {}
        for call in self.calls:
            if call.status == 200:
                counts[call.method] = counts.get(call.method, 0) + 1
        sends = [c.at for c in self.calls if c.method == "sendMessage" and c.status == 200]
        return JSONResponse({
            "ok_calls": counts,
            "pending_updates": len(self._state.updates),
            "first_send": sends[0] if sends else None,
            "last_send": sends[-1] if sends else None,
            "now": time.monotonic(),
        })

    async def _control_reset(self, request: Request) -> JSONResponse:
        self.calls.clear()
        self.deliveries.clear()
        self.failures.clear()
        self._state = _State()
        self.webhook = None
        self.allowed_updates = None
        return JSONResponse({"reset": True})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default=TOKEN)
    args = parser.parse_args()

    async def run() -> None:
        fake = await FakeTelegram(args.token).start(args.port)
        print(f"port {fake.port}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await fake.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


if __name__ == "__main__":
    main()

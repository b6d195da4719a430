"""The WeChat channel's settings as it runs with them: checked, resolved, from the daemon's
``wechat:`` section or from ``BRANDBOT_WECHAT_*`` (the ``brandbot wechat`` commands).

The section itself (names, defaults, ranges) is declared once, in
:class:`bot.channels.wechat_kind.WeChatSettings`; this module adds the checks that need the
crypto and API modules, which the kind must not import.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import ConfigDict, ValidationError

from bot.channels.contract import env_alias_values
from bot.channels.wechat_api import DEFAULT_API_URL
from bot.channels.wechat_crypto import check_aes_key
from bot.channels.wechat_kind import WeChatKind, WeChatSettings

CHANNEL = "wechat"
_TOKEN = re.compile(r"^[A-Za-z0-9]{3,32}$")


class WeChatConfigError(ValueError):
    """The channel's settings cannot work; the message says what to change."""


# -- settings -------------------------------------------------------------------------------------


class WeChatChannelSettings(WeChatSettings):
    """One account's settings as the channel runs with them.

    Every setting is declared once, in :class:`bot.channels.wechat_kind.WeChatSettings` (the
    daemon's ``wechat:`` section: name, default, range, environment variable); this adds what
    the channel needs on top: a token and an AppID (3-32 letters or digits), AES keys that work, the
    combinations that make sense (each failure a :class:`WeChatConfigError` naming the variable
    to set), ``encryption`` resolved, and ``max_clock_skew`` (not a settings key). Secrets stay
    ``SecretStr`` (masked in ``repr``); :func:`plain` gives their values.

    ``encryption`` defaults to ``safe`` when ``aes_key`` is set, else ``plain``. ``compatible``
    accepts both plaintext and encrypted pushes (the console's 兼容模式, for migrating).
    """

    model_config = ConfigDict(frozen=True)

    max_clock_skew: float = 300.0  # seconds a signed timestamp stays fresh
    # Seconds before an unauthenticated (plaintext) unsubscribe is carried out: the fan is
    # forgotten then, unless a push from them undoes it first (bot/channels/wechat_unfollow.py).
    unfollow_grace: float = 86_400.0

    def __init__(self, **values: Any) -> None:
        if not values.get("encryption"):
            values["encryption"] = "safe" if plain(values.get("aes_key")) else "plain"
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise WeChatConfigError(_explain(exc)) from None
        self._check()

    def _check(self) -> None:
        if not _TOKEN.match(plain(self.token) or ""):
            raise WeChatConfigError(
                "wechat token: 3-32 letters or digits, the same as the console's Token "
                "(基本配置 → 服务器配置); set BRANDBOT_WECHAT_TOKEN"
            )
        if not self.app_id:
            raise WeChatConfigError("wechat app_id: set BRANDBOT_WECHAT_APPID (开发者ID AppID)")
        aes_key, previous = plain(self.aes_key), plain(self.previous_aes_key)
        if self.encryption != "plain" and not aes_key:
            raise WeChatConfigError(
                f"wechat encryption {self.encryption}: set BRANDBOT_WECHAT_AES_KEY (EncodingAESKey)"
            )
        for name, value in (("aes_key", aes_key), ("previous_aes_key", previous)):
            if value:
                try:
                    check_aes_key(value, f"wechat {name}")
                except ValueError as exc:
                    raise WeChatConfigError(f"{exc}; set BRANDBOT_WECHAT_{name.upper()}") from None
        if previous and not aes_key:
            raise WeChatConfigError("wechat previous_aes_key needs aes_key (the current key)")
        if not self.path.startswith("/"):
            raise WeChatConfigError(f"wechat path: must start with '/' (got {self.path!r})")
        if self.verified and not plain(self.app_secret):
            raise WeChatConfigError(
                "wechat verified: customer-service sends need the AppSecret; set "
                "BRANDBOT_WECHAT_SECRET"
            )
        if not self.api_url.startswith(("http://", "https://")):
            raise WeChatConfigError("wechat api_url: an http(s) URL, e.g. " + DEFAULT_API_URL)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None,
                 **overrides: Any) -> WeChatChannelSettings | None:
        """Settings from ``BRANDBOT_WECHAT_*``; None when the token or AppID is not set.

        ``TOKEN``, ``APPID``, ``SECRET``, ``AES_KEY`` (safe mode when set), ``PREVIOUS_AES_KEY``,
        ``ENCRYPTION``, ``VERIFIED`` (1/true/yes/on), ``PATH``, ``API_URL``, ``REPLY_BUDGET``,
        ``MAX_BODY_BYTES``, ``KEEP_AGGREGATES`` (``WeChatKind.env_aliases``, read as the daemon's
        settings read them: :func:`bot.channels.contract.env_alias_values`).
        """
        return cls._build({**_env_values(environ), **overrides})

    @classmethod
    def from_section(cls, section: Any, environ: Mapping[str, str] | None = None,
                     **overrides: Any) -> WeChatChannelSettings | None:
        """Settings from the daemon's ``wechat:`` settings section (any object with these field
        names; ``SecretStr`` values are unwrapped), overridden by the ``BRANDBOT_WECHAT_*``
        variables of :meth:`from_env`. None when neither gives a token and an AppID."""
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            value = getattr(section, name, None) if section is not None else None
            if hasattr(value, "get_secret_value"):
                value = value.get_secret_value()
            if value is not None and value != "":
                values[name] = value
        return cls._build({**values, **_env_values(environ), **overrides})

    @classmethod
    def _build(cls, values: dict[str, Any]) -> WeChatChannelSettings | None:
        if not values.get("token") or not values.get("app_id"):
            return None
        return cls(**values)

    def secrets(self) -> list[str]:
        """Values the daemon's log filter must mask."""
        values = (self.token, self.app_secret, self.aes_key, self.previous_aes_key)
        return [s for s in map(plain, values) if s]


def plain(value: Any) -> str | None:
    """A secret's value (``SecretStr`` or ``str``); None when it is not set or empty."""
    if hasattr(value, "get_secret_value"):
        value = value.get_secret_value()
    return value or None


# Friendlier words than pydantic's for the settings people get wrong.
_HINTS = {
    "reply_budget": "seconds, above 0 and below 5 (WeChat waits 5 s)",
    "max_body_bytes": "1024 to 1048576",
    "encryption": "{input!r} is not a mode; use plain, compatible or safe",
}


def _explain(exc: ValidationError) -> str:
    """The first error, as ``wechat <setting>: <what to do>`` (never showing a value)."""
    err = exc.errors(include_url=False)[0]
    name = ".".join(str(p) for p in err["loc"]) or "settings"
    hint = _HINTS.get(name, err["msg"]).replace("{input!r}", repr(err.get("input")))
    return f"wechat {name}: {hint}"


def _env_values(environ: Mapping[str, str] | None) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, (variable, raw) in env_alias_values(WeChatKind.env_aliases, environ).items():
        raw = raw.strip()
        if not raw:
            continue
        annotation = WeChatSettings.model_fields[key].annotation
        kind = annotation if annotation in (bool, int, float) else str
        try:
            values[key] = raw.lower() in ("1", "true", "yes", "on") if kind is bool else kind(raw)
        except ValueError:
            raise WeChatConfigError(f"{variable}: not a {kind.__name__} ({raw!r})") from None
    return values

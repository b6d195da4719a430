"""Settings for ``brandbot serve``: ``brandbot.yaml`` + ``BRANDBOT_*`` environment + flags.

Precedence, highest first: command-line flags, environment (``BRANDBOT_PORT``,
``BRANDBOT_TELEGRAM__TOKEN`` — ``__`` separates nested keys), the YAML file, the defaults.
The file is ``--config``, else ``$BRANDBOT_CONFIG``, else ``./brandbot.yaml`` if it exists.

Secrets (tokens, app secrets, AES keys) are :class:`pydantic.SecretStr`: their ``repr`` and
``str`` are masked, and the daemon's log filter masks their values in every log line. They come
from the environment or the file, never from flags (flags show in ``ps``).

Invalid settings raise :class:`SettingsError`, whose lines name the key, where it came from
(``brandbot.yaml:12:3`` or ``BRANDBOT_PORT``) and the fix; ``brandbot serve`` exits 2 with them.
Every key is documented in docs/configuration.md; deploy/brandbot.example.yaml shows them all.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings import SettingsError as _SourceError

from bot.errors import BrandbotError, ConfigError, did_you_mean
from bot.yaml_source import Positions, load_yaml, position_of

ENV_PREFIX = "BRANDBOT_"
DEFAULT_CONFIG = "brandbot.yaml"
CHANNEL_NAMES = ("web", "telegram", "wechat")


class SettingsError(BrandbotError):
    """The settings are invalid; ``lines`` are one ``where: key: what to fix`` each."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        super().__init__("\n".join(lines))


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PersonaSettings(_Section):
    """One persona the daemon serves and the channels it answers on."""

    persona: str = Field(description="Persona id (personas/ID.yaml) or path to its file.")
    channels: list[str] = Field(
        default_factory=lambda: list(CHANNEL_NAMES),
        description="Channels this persona answers on (default: every enabled channel).",
    )

    @field_validator("channels")
    @classmethod
    def _known_channels(cls, value: list[str]) -> list[str]:
        unknown = [c for c in value if c not in CHANNEL_NAMES]
        if unknown:
            raise ValueError(
                f"unknown channel(s) {', '.join(map(repr, unknown))}; "
                f"use some of: {', '.join(CHANNEL_NAMES)}"
            )
        return value


class WebSettings(_Section):
    enabled: bool = True
    max_body_bytes: int = Field(16_384, ge=256, le=1_048_576)
    max_text_chars: int = Field(2_000, ge=1, le=100_000)
    cookie_secure: bool = Field(False, description="Set the fan cookie's Secure flag (HTTPS).")
    cookie_secret: SecretStr | None = Field(
        None, min_length=32,
        description="Signs the fan cookie; unset: generated once into <db>.cookie-secret (0600).",
    )
    api_key: SecretStr | None = Field(
        None, min_length=16,
        description="Bearer key that lets a server-side caller name the fan (the \"fan\" field).",
    )
    messages_per_fan: str | None = Field(
        "20/minute", description="POST /api/chat per fan (limits syntax); null: no limit."
    )
    messages_per_ip: str | None = Field(
        "60/minute", description="POST /api/chat per client address; null: no limit."
    )
    requests_per_ip: str | None = Field(
        "600/minute", description="Every /api/ request per client address; null: no limit."
    )
    new_fans_per_ip: str | None = Field(
        "30/minute;300/hour",
        description="New fan cookies per client address (an IPv6 /64); null: no limit.",
    )
    rate_limit_exempt: list[str] = Field(
        default_factory=lambda: ["127.0.0.1", "::1"],
        description="Client addresses or networks never rate-limited (loopback: tests, bench).",
    )
    trusted_proxies: list[str] = Field(
        default_factory=lambda: ["127.0.0.1"],
        description="Proxies whose X-Forwarded-For gives the client address (nginx).",
    )

    @field_validator("messages_per_fan", "messages_per_ip", "requests_per_ip",
                     "new_fans_per_ip")
    @classmethod
    def _rate(cls, value: str | None) -> str | None:
        from bot.channels.web_limits import check_rate

        return check_rate(value)

    @field_validator("rate_limit_exempt", "trusted_proxies", mode="before")
    @classmethod
    def _exempt(cls, value: Any) -> Any:
        from bot.channels.web_limits import check_networks

        if isinstance(value, str):  # BRANDBOT_WEB__RATE_LIMIT_EXEMPT=10.0.0.0/8,::1
            value = [v.strip() for v in value.split(",") if v.strip()]
        return check_networks(value) if isinstance(value, list) else value


class TelegramSettings(_Section):
    token: SecretStr | None = Field(None, description="Bot token from @BotFather.")
    api_url: str | None = Field(
        None, description="Bot API base URL (python-telegram-bot's base_url); default Telegram's."
    )
    webhook_url: str | None = Field(
        None, description="Public HTTPS URL of /telegram/webhook; without it the bot long-polls."
    )
    webhook_secret: SecretStr | None = Field(
        None, description="X-Telegram-Bot-Api-Secret-Token; required with webhook_url."
    )
    operator_group_id: int | None = Field(
        None, description="Forum supergroup where operators answer handoffs (one topic per fan)."
    )
    bot_username: str | None = Field(
        None, description="The bot's @username, for campaign links (default: asked with getMe)."
    )

    @property
    def enabled(self) -> bool:
        return self.token is not None and bool(self.token.get_secret_value())


class WeChatSettings(_Section):
    """One WeChat Official Account; see docs/channels/wechat.md for the console side."""

    app_id: str | None = Field(None, description="开发者ID AppID.")
    app_secret: SecretStr | None = Field(None, description="AppSecret (API calls).")
    token: SecretStr | None = Field(None, description="服务器配置 Token (signatures).")
    aes_key: SecretStr | None = Field(None, description="EncodingAESKey; safe mode when set.")
    previous_aes_key: SecretStr | None = Field(None, description="The key before a rotation.")
    encryption: Literal["plain", "compatible", "safe"] | None = None
    verified: bool = Field(False, description="Verified account: customer-service sends allowed.")
    path: str = "/wechat"
    api_url: str = "https://api.weixin.qq.com/cgi-bin/"
    reply_budget: float = Field(4.0, gt=0, lt=5, description="Seconds for a passive reply.")
    max_body_bytes: int = Field(65_536, ge=1024, le=1_048_576)
    keep_aggregates: bool = Field(True, description="On unfollow keep anonymised counts.")

    @property
    def enabled(self) -> bool:
        return bool(self.app_id and self.token and self.token.get_secret_value())


class Settings(BaseSettings):
    """Everything ``brandbot serve`` can be told. See docs/configuration.md."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        case_sensitive=False,
    )

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    db: str = "brandbot.db"
    public_url: str | None = Field(
        None, description="The address fans reach the web chat at (https://chat.example.com/); "
        "campaign links and QR codes use it, `brandbot doctor` checks it is reachable."
    )
    db_synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    personas: list[PersonaSettings] = Field(
        default_factory=lambda: [PersonaSettings(persona="laowang-kitchen")]
    )
    web: WebSettings = Field(default_factory=WebSettings)
    telegram: TelegramSettings = Field(default_factory=TelegramSettings)
    wechat: WeChatSettings = Field(default_factory=WeChatSettings)
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    reload: bool = True
    reload_debounce_ms: int = Field(150, ge=10, le=10_000)
    engine_threads: int = Field(2, ge=0, le=64)
    shutdown_timeout: float = Field(8.0, gt=0, le=60)
    # HTTP server limits (docs/configuration.md "Connection limits").
    read_timeout: float = Field(
        10.0, gt=0, le=300,
        description="Seconds a client has to send a whole request (headers and body): 408.",
    )
    max_connections: int = Field(
        1000, ge=1, le=1_000_000,
        description="Open HTTP connections served at once; a request beyond gets 503.",
    )
    metrics_token: SecretStr | None = Field(
        None, description="Bearer token for /metrics and the /healthz details "
        "(Authorization: Bearer TOKEN); without it /healthz shows the status only."
    )

    @field_validator("personas", mode="before")
    @classmethod
    def _persona_shorthand(cls, value: Any) -> Any:
        # `personas: [laowang-kitchen]` is short for `[{persona: laowang-kitchen}]`.
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, list):
            return [{"persona": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("personas")
    @classmethod
    def _at_least_one(cls, value: list[PersonaSettings]) -> list[PersonaSettings]:
        if not value:
            raise ValueError("list at least one persona, e.g. personas: [laowang-kitchen]")
        return value

    @field_validator("log_level", "db_synchronous", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        aliases, yaml_file = _EnvAliasSource(settings_cls), _YamlSource(settings_cls)
        return (init_settings, env_settings, aliases, yaml_file)

    def secrets(self) -> list[str]:
        """The secret values, for the log filter that masks them."""
        values = [
            self.telegram.token,
            self.telegram.webhook_secret,
            self.wechat.app_secret,
            self.wechat.token,
            self.wechat.aes_key,
            self.wechat.previous_aes_key,
            self.metrics_token,
            self.web.cookie_secret,
            self.web.api_key,
        ]
        return [v.get_secret_value() for v in values if v is not None and v.get_secret_value()]

    def channel_enabled(self, name: str) -> bool:
        return {
            "web": self.web.enabled,
            "telegram": self.telegram.enabled,
            "wechat": self.wechat.enabled,
        }[name]


# The YAML file being loaded; a context variable would be overkill for one CLI call.
_yaml_state: dict[str, Any] = {"data": {}, "path": None, "positions": {}}


# The short environment names the channel docs promise, besides the nested BRANDBOT_X__Y form.
ENV_ALIASES = {
    "BRANDBOT_TELEGRAM_TOKEN": ("telegram", "token"),
    "BRANDBOT_TELEGRAM_API_URL": ("telegram", "api_url"),
    "BRANDBOT_TELEGRAM_WEBHOOK_URL": ("telegram", "webhook_url"),
    "BRANDBOT_TELEGRAM_WEBHOOK_SECRET": ("telegram", "webhook_secret"),
    "BRANDBOT_TELEGRAM_OPERATOR_GROUP": ("telegram", "operator_group_id"),
    "BRANDBOT_TELEGRAM_BOT_USERNAME": ("telegram", "bot_username"),
    "BRANDBOT_WECHAT_TOKEN": ("wechat", "token"),
    "BRANDBOT_WECHAT_APPID": ("wechat", "app_id"),
    "BRANDBOT_WECHAT_SECRET": ("wechat", "app_secret"),
    "BRANDBOT_WECHAT_AES_KEY": ("wechat", "aes_key"),
    "BRANDBOT_WECHAT_API_URL": ("wechat", "api_url"),
    "BRANDBOT_WECHAT_PREVIOUS_AES_KEY": ("wechat", "previous_aes_key"),
    "BRANDBOT_WECHAT_ENCRYPTION": ("wechat", "encryption"),
    "BRANDBOT_WECHAT_VERIFIED": ("wechat", "verified"),
    "BRANDBOT_WECHAT_PATH": ("wechat", "path"),
    "BRANDBOT_WECHAT_REPLY_BUDGET": ("wechat", "reply_budget"),
    "BRANDBOT_WECHAT_MAX_BODY_BYTES": ("wechat", "max_body_bytes"),
    "BRANDBOT_WECHAT_KEEP_AGGREGATES": ("wechat", "keep_aggregates"),
}


class _EnvAliasSource(PydanticBaseSettingsSource):
    """``BRANDBOT_TELEGRAM_TOKEN`` and friends (docs/channels/*.md): one variable per secret."""

    def get_field_value(self, field, field_name):  # pragma: no cover - __call__ is used
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, (section, key) in ENV_ALIASES.items():
            if os.environ.get(name):
                values.setdefault(section, {})[key] = os.environ[name]
        return values


class _YamlSource(PydanticBaseSettingsSource):
    def get_field_value(self, field, field_name):  # pragma: no cover - __call__ is used
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_yaml_state["data"])


def config_path(explicit: str | None) -> Path | None:
    """Which settings file to read: --config, $BRANDBOT_CONFIG, ./brandbot.yaml, or none."""
    if explicit:
        return Path(explicit)
    env = os.environ.get(f"{ENV_PREFIX}CONFIG")
    if env:
        return Path(env)
    default = Path(DEFAULT_CONFIG)
    return default if default.is_file() else None


def load_settings(config: str | None = None, **overrides: Any) -> Settings:
    """Read the file, the environment and ``overrides`` (flags; None means not given)."""
    path = config_path(config)
    data: dict[str, Any] = {}
    positions: Positions = {}
    if path is not None:
        if not path.is_file():
            how = "--config" if config else f"{ENV_PREFIX}CONFIG"
            raise SettingsError(
                [
                    f"{how}: no settings file at {path}; fix the path or create it "
                    "(see deploy/brandbot.example.yaml)"
                ]
            )
        try:
            loaded, positions = load_yaml(path)
        except ConfigError as exc:
            raise SettingsError([str(p) for p in exc.problems]) from None
        if not isinstance(loaded, dict):
            raise SettingsError(
                [f"{path}:1:1: the settings file must be a mapping of keys (host: ..., port: ...)"]
            )
        data = loaded
    init = {k: v for k, v in overrides.items() if v is not None}
    _yaml_state.update(data=data, path=path, positions=positions)
    try:
        return Settings(**init)
    except ValidationError as exc:
        raise SettingsError(_explain(exc, path, positions, init)) from None
    except _SourceError as exc:
        # A list or mapping given in the environment must be JSON.
        raise SettingsError(
            [
                f"environment: {exc}; lists and mappings are JSON there, e.g. "
                f"{ENV_PREFIX}PERSONAS='[\"laowang-kitchen\"]' (see docs/configuration.md)"
            ]
        ) from None
    finally:
        _yaml_state.update(data={}, path=None, positions={})


_SECRET_KEYS = {"token", "webhook_secret", "app_secret", "aes_key", "previous_aes_key",
                "metrics_token", "cookie_secret", "api_key"}
_FLAGS = {"host": "--host", "port": "--port", "db": "--db", "personas": "--persona"}


def _explain(
    exc: ValidationError, path: Path | None, positions: Positions, init: dict[str, Any]
) -> list[str]:
    """One line per error: where the value came from, the dotted key, and what to do."""
    lines = []
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
        key = ".".join(str(p) for p in loc) or "(settings)"
        top = str(loc[0]) if loc else ""
        env_name = ENV_PREFIX + "__".join(str(p) for p in loc if isinstance(p, str)).upper()
        if top in init:
            where = _FLAGS.get(top, top)
        elif env_name in {k.upper() for k in os.environ} or (
            ENV_PREFIX + top.upper() in {k.upper() for k in os.environ}
        ):
            where = env_name if env_name in os.environ else ENV_PREFIX + top.upper()
        elif path is not None and loc and loc[0] in _yaml_data_keys(positions):
            line, col = position_of(positions, loc)
            where = f"{path}:{line}:{col}"
        else:
            where = str(path) if path else "settings"
        lines.append(f"{where}: {key}: {_fix(err, loc)}")
    return lines


def _yaml_data_keys(positions: Positions) -> set[str]:
    return {str(k[0]) for k in positions if k}


def _fix(err: dict[str, Any], loc: tuple) -> str:
    kind, msg = err["type"], err["msg"]
    name = loc[-1] if loc else ""
    if kind == "extra_forbidden":
        known = _known_keys(loc[:-1])
        return f"unknown key {name!r}; check the spelling or remove it" + (
            f" (known keys here: {', '.join(known)})" if known else ""
        ) + did_you_mean(name, known)
    if kind == "missing":
        return f"required key {name!r} is missing; add it"
    msg = msg.replace("Value error, ", "").replace("Input should be", "must be")
    if (
        "input" in err
        and not isinstance(err["input"], dict | list)
    ):
        # A whole channel section given as a string is most likely a pasted secret too.
        secret = name in _SECRET_KEYS or any(p in ("telegram", "wechat") for p in loc)
        shown = "***" if secret else repr(err["input"])
        msg += f" (got {shown})"
    return msg + "; see docs/configuration.md"


def _known_keys(parent: tuple) -> list[str]:
    model: Any = Settings
    for part in parent:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part)) if hasattr(model, "model_fields") else None
        if field is None:
            return []
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        candidates = [annotation, *args]
        model = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
        if model is None:
            return []
    return sorted(model.model_fields)

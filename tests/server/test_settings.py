"""The service's settings: one typed model, the flags and the deployment table generated from it."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from facelive import cli
from facelive.commands.serve import (
    ENV_ONLY,
    TABLE_END,
    TABLE_START,
    add_arguments,
    flag,
    from_args,
    settings_table,
)
from facelive.errors import FaceliveError
from facelive.server.settings import ENV, Settings

DEPLOYMENT = Path(__file__).resolve().parents[2] / "docs" / "deployment.md"

# Every flag `facelive serve` accepts: the parser generated from Settings must keep them all.
FLAGS = """--host --port --workers --max-body-bytes --max-pixels --max-concurrency --retry-after
--max-aspect-ratio --pipeline-workers --job-timeout --worker-max-rss-mb --upload-buffer-bytes
--body-timeout --body-min-rate --header-timeout --keep-alive --max-connections --max-header-bytes
--trusted-proxies --api-keys-file --key-rate --key-burst --address-rate --address-burst
--rate-limit-timeout
--no-openapi --tests --threshold --no-fusion --missing --budget-ms --allow-missing-models
--cors-origins --root-path --log-level --no-sessions --redis-url --signing-key --demo
--session-ttl --result-ttl --sessions-per-key --sessions-per-address --session-window
--session-max-frames --session-max-body-bytes --verify-timeout""".split()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    add_arguments(p)
    return p


def test_the_deployment_table_is_generated_from_the_model() -> None:
    text = DEPLOYMENT.read_text(encoding="utf-8")
    assert TABLE_START in text and TABLE_END in text
    table = text.split(TABLE_START, 1)[1].split(TABLE_END, 1)[0].lstrip("\n")
    assert table == settings_table(), (
        "docs/deployment.md is out of date: python -m facelive.commands.serve --markdown "
        "docs/deployment.md")
    assert table.count("\n") == len(Settings.model_fields) + 2


def test_every_setting_is_described_once_with_a_variable_and_a_flag() -> None:
    for name, field in Settings.model_fields.items():
        assert field.description and field.description.endswith("."), name
        assert ENV[name] == "FACELIVE_" + name.upper()
    options = [a.option_strings[0] for a in parser()._actions if a.dest in ENV]
    assert sorted(options) == sorted(f for n in ENV if (f := flag(n)))
    assert set(FLAGS) <= set(options) and len(options) == len(set(options))
    assert ENV_ONLY == {"api_keys", "operator_keys"} and flag("api_keys") is None


def test_flags_set_their_fields_with_types_from_the_annotations() -> None:
    args = parser().parse_args([
        "--retry-after", "3", "--job-timeout", "2.5", "--keep-alive", "7", "--no-openapi",
        "--no-sessions", "--no-fusion", "--demo", "--max-body-bytes", "2MB", "--missing",
        "abstain", "--log-level", "debug", "--session-ttl", "30", "--verify-timeout", "9",
        "--trusted-proxies", "10.0.0.0/8, ::1", "--threshold", "0.25"])
    s = from_args(args, {})
    assert (s.retry_after_s, s.job_timeout_s, s.keep_alive_s, s.max_body_bytes) == (
        3, 2.5, 7, 2 * 1024 * 1024)
    assert not s.openapi and not s.sessions and s.no_fusion and s.demo
    assert (s.missing, s.log_level, s.session_ttl_s, s.verify_timeout_s) == (
        "abstain", "debug", 30.0, 9.0)
    assert s.trusted_proxies == ("10.0.0.0/8", "::1") and s.threshold == 0.25
    unset = from_args(parser().parse_args([]), {"FACELIVE_OPENAPI": "0", "FACELIVE_PORT": "81"})
    assert not unset.openapi and unset.port == 81 and unset.sessions  # flags not given: env
    with pytest.raises(SystemExit):
        parser().parse_args(["--log-level", "loud"])
    with pytest.raises(SystemExit):
        parser().parse_args(["--port", "http"])


def test_the_help_gives_the_description_default_and_variable() -> None:
    text = re.sub(r"\s+", " ", parser().format_help())
    assert "Retry-After seconds sent with 503 (default 1; FACELIVE_RETRY_AFTER_S)" in text
    assert "Turn off: Serve the API schema" in text and "(default 10MB;" in text


@pytest.mark.parametrize(("env", "expected"), [
    ({"FACELIVE_PORT": "70000"}, "port must be less than or equal to 65535"),
    ({"FACELIVE_MAX_BODY_BYTES": "0"}, "max_body_bytes must be greater than 0"),
    ({"FACELIVE_KEY_RATE": "-1"}, "key_rate must be greater than or equal to 0"),
    ({"FACELIVE_LOG_LEVEL": "loud"}, "log_level must be 'critical'"),
    ({"FACELIVE_MISSING": "never"}, "missing must be 'abstain' or 'available'"),
    ({"FACELIVE_TESTS": ","}, "tests must have at least 1 item"),
    ({"FACELIVE_REDIS_URL": "http://x"}, "redis_url must match pattern"),
    ({"FACELIVE_TRUSTED_PROXIES": "10.0.0.0/8,proxy"}, "does not appear to be an IPv4 or IPv6"),
    ({"FACELIVE_API_KEYS": "abc"}, "api_keys must match pattern"),
])
def test_constraints_are_types_with_clear_messages(env: dict[str, str], expected: str) -> None:
    with pytest.raises(FaceliveError) as info:
        Settings.from_env(env)
    assert info.value.code == "usage"
    assert f"invalid {next(iter(env))}=" in info.value.message and expected in info.value.message


def test_environment_values_are_parsed_and_round_trip() -> None:
    s = Settings.from_env({"facelive_max_header_bytes": " 32k ", "FACELIVE_ROOT_PATH": "  ",
                           "FACELIVE_API_KEYS": "A" * 64, "FACELIVE_SESSIONS": "off"})
    assert s.max_header_bytes == 32 * 1024 and s.root_path == "" and s.api_keys == ("a" * 64,)
    assert not s.sessions and Settings.from_env(s.to_env()) == s
    assert s.with_(port=9000).port == 9000 and s.with_(port=9000).api_keys == s.api_keys
    with pytest.raises(FaceliveError, match="invalid settings: nope: Extra inputs"):
        Settings(nope=1)


def test_serve_exits_2_on_invalid_settings(monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FACELIVE_THRESHOLD", "2")
    assert cli.main(["serve"]) == 2
    assert "invalid FACELIVE_THRESHOLD='2': threshold must be" in capsys.readouterr().err
    monkeypatch.delenv("FACELIVE_THRESHOLD")
    with pytest.raises(SystemExit) as exc:
        cli.main(["serve", "--max-body-bytes", "lots"])
    assert exc.value.code == 2 and "--max-body-bytes" in capsys.readouterr().err

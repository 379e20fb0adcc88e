"""Settings: PRICER_* variables, a database under the data directory, bad values refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.settings import SettingsError, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    names = ("DATA_DIR", "DB_PATH", "RULES_DIR", "ADMIN_TOKEN")
    for name in (*names, "MAX_LINES_PER_CART", "MAX_CARTS_PER_BATCH", "MAX_BODY_BYTES"):
        monkeypatch.delenv(f"PRICER_{name}", raising=False)


def test_defaults() -> None:
    s = load_settings()
    assert (s.data_dir, s.db_path, s.rules_dir) == (
        Path("data"),
        Path("data/pricer.duckdb"),
        Path("rules"),
    )
    assert s.admin_token is None
    assert (s.max_lines_per_cart, s.max_carts_per_batch, s.max_body_bytes) == (
        1000,
        10_000,
        10 * 1024 * 1024,
    )


def test_database_follows_the_data_dir_unless_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRICER_DATA_DIR", "/srv/pricer")
    assert load_settings().db_path == Path("/srv/pricer/pricer.duckdb")
    monkeypatch.setenv("PRICER_DB_PATH", "/elsewhere/p.duckdb")
    assert load_settings().db_path == Path("/elsewhere/p.duckdb")


def test_overrides_beat_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRICER_RULES_DIR", "env-rules")
    assert load_settings(rules_dir="cli-rules").rules_dir == Path("cli-rules")
    assert load_settings(rules_dir=None).rules_dir == Path("env-rules")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "MAX_LINES_PER_CART",
            "0",
            "PRICER_MAX_LINES_PER_CART: Input should be greater than or equal to 1",
        ),
        (
            "MAX_LINES_PER_CART",
            "many",
            "PRICER_MAX_LINES_PER_CART: Input should be a valid integer",
        ),
        (
            "MAX_BODY_BYTES",
            "10",
            "PRICER_MAX_BODY_BYTES: Input should be greater than or equal to 1024",
        ),
        ("ADMIN_TOKEN", "short", "PRICER_ADMIN_TOKEN: must be at least 8 characters"),
    ],
)
def test_bad_values_fail_fast_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(f"PRICER_{name}", value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert message in str(caught.value)


def test_unknown_setting_in_code_is_an_error() -> None:
    with pytest.raises(SettingsError, match="PRICER_MAX_LINES: Extra inputs are not permitted"):
        load_settings(max_lines=5)

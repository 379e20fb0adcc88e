"""The service's settings: one class, read from ``PRICER_*`` environment variables, checked at once.

>>> Settings(data_dir=Path("/tmp/p")).db_path
PosixPath('/tmp/p/pricer.duckdb')
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DB_FILE = "pricer.duckdb"


class Settings(BaseSettings):
    """Every setting; ``PRICER_<NAME>`` in the environment overrides the default."""

    model_config = SettingsConfigDict(env_prefix="PRICER_", extra="forbid", frozen=True)

    data_dir: Path = Field(Path("data"), description="directory of the DuckDB file")
    db_path: Path = Field(
        Path("data") / DB_FILE, description="the DuckDB file (default: <data_dir>/pricer.duckdb)"
    )
    rules_dir: Path = Field(
        Path("rules"), description="ruleset served when none was published to the store"
    )
    admin_token: SecretStr | None = Field(
        None, description="bearer token for admin endpoints; unset = admin endpoints refuse all"
    )
    max_lines_per_cart: int = Field(1000, ge=1, le=1_000_000)
    max_carts_per_batch: int = Field(10_000, ge=1, le=10_000_000)
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=1024, le=2**31)

    @model_validator(mode="before")
    @classmethod
    def _db_under_data_dir(cls, values: Any) -> Any:
        if isinstance(values, dict) and values.get("db_path") in (None, ""):
            data_dir = values.get("data_dir") or Path("data")
            values = {**values, "db_path": Path(data_dir) / DB_FILE}
        return values

    @field_validator("admin_token")
    @classmethod
    def _token_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().strip()) < 8:
            raise ValueError("must be at least 8 characters (unset it to disable admin endpoints)")
        return value


class SettingsError(ValueError):
    """Settings that failed validation, as one readable line per problem."""


def load_settings(**overrides: Any) -> Settings:
    """``Settings`` from the environment plus ``overrides``; raise ``SettingsError`` if bad."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**clean)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"]) or "settings"
            message = str(err["msg"]).removeprefix("Value error, ")
            problems.append(f"PRICER_{name.upper()}: {message}")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None

"""Text columns read as exact integers, vectorized: decimals at the edge of the columnar path.

The syntax is ``engine.core.money.DECIMAL_SYNTAX``'s (plain ASCII decimals), so a value reads the
same whether it arrives as one JSON string or in a column of a million.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from engine.core.money import CURRENCY_EXPONENTS, MAX_QTY_MILLI, QTY_SCALE


def scaled_column(values: pl.Series, digits: int) -> tuple[np.ndarray, np.ndarray]:
    """Non-negative decimal text -> integers scaled by 10^digits, and which rows were valid
    (plain ASCII decimals with at most ``digits`` significant decimals; nulls are invalid)."""
    frame = pl.DataFrame({"v": values.cast(pl.String).str.strip_chars()}).select(
        shape=pl.col("v").str.contains(r"^\+?[0-9]{1,15}(\.[0-9]*)?$").fill_null(False),
        whole=pl.col("v")
        .str.extract(r"^\+?([0-9]{1,15})", 1)
        .cast(pl.Int64, strict=False)
        .fill_null(0),
        frac=pl.col("v").str.extract(r"\.([0-9]*)$", 1).fill_null("").str.strip_chars_end("0"),
    )
    frac = frame["frac"]
    ok = frame["shape"].to_numpy() & (frac.str.len_chars() <= digits).to_numpy()
    frac_value = (
        frac.str.pad_end(digits, "0").str.slice(0, digits).cast(pl.Int64, strict=False).fill_null(0)
        if digits
        else pl.Series([0] * len(frac))
    )
    scaled = frame["whole"].to_numpy() * 10**digits + frac_value.to_numpy()
    return np.where(ok, scaled, 0), ok


def null_text(n: int) -> pl.Series:
    return pl.repeat(None, n, dtype=pl.String, eager=True)


def quantity_column(qty: pl.Series) -> np.ndarray:
    """Quantities in thousandths; -1 for anything not a positive decimal with <= 3 decimals."""
    if qty.dtype.is_integer():
        whole = qty.cast(pl.Int64)
        return np.where(whole.is_null().to_numpy(), -1, whole.fill_null(0).to_numpy() * QTY_SCALE)
    text = qty.cast(pl.String).str.strip_chars()
    whole_only = text.cast(pl.Int64, strict=False)
    if whole_only.null_count() == 0:  # every quantity a whole number: no regex needed
        values = whole_only.to_numpy()
        return np.where(
            (values > 0) & (values <= MAX_QTY_MILLI // QTY_SCALE), values * QTY_SCALE, -1
        )
    frame = pl.DataFrame({"q": text}).select(
        # the syntax of engine.core.money.DECIMAL_SYNTAX, at most 3 decimals (trailing zeros aside)
        ok=pl.col("q")
        .str.contains(r"^\+?([0-9]{1,12}(\.[0-9]{0,3}0*)?|\.[0-9]{1,3}0*)$")
        .fill_null(False),
        whole=pl.col("q")
        .str.extract(r"^\+?([0-9]{0,12})", 1)
        .str.replace(r"^$", "0")
        .cast(pl.Int64, strict=False),
        frac=pl.col("q")
        .str.extract(r"\.([0-9]{0,3})", 1)
        .str.pad_end(3, "0")
        .cast(pl.Int64, strict=False)
        .fill_null(0),
    )
    ok = frame["ok"].to_numpy()
    milli = frame["whole"].fill_null(0).to_numpy() * QTY_SCALE + frame["frac"].to_numpy()
    return np.where(ok, milli, -1)


# ---- integers back to text, vectorized (result columns of batch jobs) ----------------------


def _scaled_text(value: pl.Expr, digits: int, trim: bool) -> pl.Expr:
    mag = value.abs()
    whole = (mag // 10**digits).cast(pl.String)
    sign = pl.when(value < 0).then(pl.lit("-")).otherwise(pl.lit(""))
    if digits == 0:
        return pl.concat_str(sign, whole)
    frac = (mag % 10**digits).cast(pl.String).str.zfill(digits)
    if not trim:
        return pl.concat_str(sign, whole, pl.lit("."), frac)
    frac = frac.str.strip_chars_end("0")
    return pl.concat_str(
        sign, whole, pl.when(frac == "").then(pl.lit("")).otherwise(pl.lit(".") + frac)
    )


def money_text(minor: pl.Expr, currency: str) -> pl.Expr:
    """Minor units -> decimal text with the currency's digits (``engine.core.money.format_money``)."""
    return _scaled_text(minor, CURRENCY_EXPONENTS[currency], trim=False)


def quantity_text(milli: pl.Expr) -> pl.Expr:
    """Thousandths -> decimal text without trailing zeros (``format_quantity``)."""
    return _scaled_text(milli, 3, trim=True)


def percent_text(bp: pl.Expr) -> pl.Expr:
    """Basis points -> ``"107.5%"`` (``format_percent``)."""
    return pl.concat_str(_scaled_text(bp, 2, trim=True), pl.lit("%"))

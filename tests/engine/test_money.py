"""engine.core.money with real figures: parsing, formatting, and rounding checked against exact fractions."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from engine.core.money import (
    CURRENCY_EXPONENTS,
    MoneyError,
    Rounding,
    convert_minor,
    exponent,
    format_money,
    format_percent,
    format_quantity,
    int_round_div,
    mul_div_round,
    parse_money,
    parse_percent,
    parse_quantity,
    parse_rate,
    round_div,
)

INT64_MAX = 2**63 - 1
MODES: tuple[Rounding, ...] = ("half_up", "half_even")


def exact_round(value: Fraction, mode: Rounding) -> int:
    """The rounding the spec asks for, on the magnitude, from an exact fraction."""
    magnitude = abs(value)
    whole = math.floor(magnitude)
    rest = magnitude - whole
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and (mode == "half_up" or whole % 2 == 1)):
        whole += 1
    return whole if value >= 0 else -whole


# ---- parsing and formatting ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("1234.5", "CNY", 123450),
        ("1234.50", "CNY", 123450),
        ("0.01", "USD", 1),
        ("-4.50", "CNY", -450),
        ("1500", "JPY", 1500),
        ("1.234", "BHD", 1234),
        (" 7 ", "EUR", 700),
    ],
)
def test_parse_money_gives_minor_units(text: str, currency: str, minor: int) -> None:
    assert parse_money(text, currency) == minor


@pytest.mark.parametrize(
    ("text", "currency"),
    [
        ("1.005", "CNY"),  # a tenth of a fen
        ("1.5", "JPY"),  # yen have no minor unit
        ("1.2345", "BHD"),
        ("abc", "CNY"),
        ("", "CNY"),
        ("1,50", "CNY"),
        ("NaN", "CNY"),
        ("Infinity", "USD"),
    ],
)
def test_parse_money_refuses_what_it_cannot_hold_exactly(text: str, currency: str) -> None:
    with pytest.raises(MoneyError):
        parse_money(text, currency)


def test_unknown_currency_is_an_error() -> None:
    with pytest.raises(MoneyError, match="XYZ"):
        exponent("XYZ")
    with pytest.raises(MoneyError):
        parse_money("1.00", "XYZ")


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (-450, "CNY", "-4.50"),
        (5, "CNY", "0.05"),
        (-5, "CNY", "-0.05"),
        (0, "USD", "0.00"),
        (123450, "CNY", "1234.50"),
        (-5, "JPY", "-5"),
        (1234, "BHD", "1.234"),
        (10**15 - 1, "CNY", "9999999999999.99"),
    ],
)
def test_format_money(minor: int, currency: str, text: str) -> None:
    assert format_money(minor, currency) == text


def test_format_money_takes_numpy_integers() -> None:
    assert format_money(np.int64(-12345), "CNY") == "-123.45"


@pytest.mark.parametrize(
    ("text", "milli"),
    [
        ("1", 1000),
        ("1.5", 1500),
        ("0.001", 1),
        ("3.333", 3333),
        ("1000000000", 10**12),
        ("-2", -2000),
    ],
)
def test_parse_quantity_gives_thousandths(text: str, milli: int) -> None:
    assert parse_quantity(text) == milli


@pytest.mark.parametrize("text", ["1.0005", "0.0001", "abc", "", "1/2", "-Infinity"])
def test_parse_quantity_refuses_over_precise_or_non_numbers(text: str) -> None:
    with pytest.raises(MoneyError):
        parse_quantity(text)


@pytest.mark.parametrize(
    ("milli", "text"),
    [(3333, "3.333"), (1500, "1.5"), (1000, "1"), (1, "0.001"), (10, "0.01"), (-2500, "-2.5")],
)
def test_format_quantity_drops_trailing_zeros(milli: int, text: str) -> None:
    assert format_quantity(milli) == text


@pytest.mark.parametrize(
    ("text", "bp"),
    [
        ("12.5%", 1250),
        ("0.25%", 25),
        ("13%", 1300),
        ("13", 1300),
        ("100%", 10000),
        ("33.33%", 3333),
    ],
)
def test_parse_percent_gives_basis_points(text: str, bp: int) -> None:
    assert parse_percent(text) == bp


@pytest.mark.parametrize("text", ["12.345%", "0.001%", "five%", "%"])
def test_parse_percent_refuses_more_than_two_decimals(text: str) -> None:
    with pytest.raises(MoneyError):
        parse_percent(text)


@pytest.mark.parametrize(
    ("bp", "text"),
    [(1250, "12.5%"), (25, "0.25%"), (1300, "13%"), (0, "0%"), (3333, "33.33%"), (-500, "-5%")],
)
def test_format_percent(bp: int, text: str) -> None:
    assert format_percent(bp) == text


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("0.1385", (1385, 10000)),
        ("7", (7, 1)),
        ("7.1234", (71234, 10000)),
        ("150.25", (15025, 100)),
    ],
)
def test_parse_rate_is_an_exact_fraction(text: str, rate: tuple[int, int]) -> None:
    num, den = parse_rate(text)
    assert Fraction(num, den) == Fraction(*rate)


@pytest.mark.parametrize("text", ["0", "-1.2", "0.00000000001", "x"])
def test_parse_rate_refuses_non_positive_or_over_precise(text: str) -> None:
    with pytest.raises(MoneyError):
        parse_rate(text)


@given(minor=st.integers(-(10**15), 10**15), currency=st.sampled_from(sorted(CURRENCY_EXPONENTS)))
def test_money_round_trips_through_text(minor: int, currency: str) -> None:
    assert parse_money(format_money(minor, currency), currency) == minor


@given(milli=st.integers(-(10**12), 10**12))
def test_quantity_round_trips_through_text(milli: int) -> None:
    assert parse_quantity(format_quantity(milli)) == milli


@given(bp=st.integers(-(10**6), 10**6))
def test_percent_round_trips_through_text(bp: int) -> None:
    assert parse_percent(format_percent(bp)) == bp


# ---- rounding ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("num", "den", "half_up", "half_even"),
    [
        (5, 10, 1, 0),  # 0.5
        (15, 10, 2, 2),  # 1.5
        (25, 10, 3, 2),  # 2.5
        (35, 10, 4, 4),  # 3.5
        (-5, 10, -1, 0),
        (-15, 10, -2, -2),
        (-25, 10, -3, -2),  # on the magnitude: -2.5 -> -3 (half_up), -2 (half_even)
        (24, 10, 2, 2),
        (26, 10, 3, 3),
        (-26, 10, -3, -3),
        (4499500, 10000, 450, 450),  # 5% of 89.99 = 4.4995 -> 4.50 (scenario K03)
        (44995, 10000, 4, 4),  # 4.4995 of a unit -> 4
        (0, 7, 0, 0),
    ],
)
def test_round_div_half_up_and_half_even(num: int, den: int, half_up: int, half_even: int) -> None:
    assert round_div(num, den, "half_up") == half_up
    assert round_div(num, den, "half_even") == half_even
    assert int_round_div(num, den, half_even=False) == half_up
    assert int_round_div(num, den, half_even=True) == half_even
    nums = np.array([num], dtype=np.int64)
    assert round_div(nums, den, "half_up").tolist() == [half_up]
    assert round_div(nums, den, "half_even").tolist() == [half_even]


@given(
    num=st.integers(-(10**30), 10**30),
    den=st.integers(1, 10**12),
    mode=st.sampled_from(MODES),
)
def test_round_div_on_ints_is_exact_at_any_size(num: int, den: int, mode: Rounding) -> None:
    want = exact_round(Fraction(num, den), mode)
    assert round_div(num, den, mode) == want
    assert int_round_div(num, den, half_even=mode == "half_even") == want


@given(
    nums=st.lists(st.integers(-(10**18), 10**18), min_size=1, max_size=20),
    den=st.integers(1, 10**9),
    mode=st.sampled_from(MODES),
)
def test_round_div_on_arrays_matches_ints(nums: list[int], den: int, mode: Rounding) -> None:
    got = round_div(np.array(nums, dtype=np.int64), den, mode).tolist()
    assert got == [exact_round(Fraction(n, den), mode) for n in nums]


AMOUNTS = st.one_of(
    st.integers(-(10**15), 10**15),
    st.integers(10**15 - 10**4, 10**15),  # near the line-amount limit
    st.integers(-(10**15), -(10**15) + 10**4),
    st.integers(-1000, 1000),
)
DENOMINATORS = st.sampled_from((1, 10, 100, 1000, 10_000, 11_300, 10**6, 10**10))


@settings(max_examples=300)
@given(
    amounts=st.lists(AMOUNTS, min_size=1, max_size=10),
    b=st.integers(-(10**12), 10**12),
    den=DENOMINATORS,
    mode=st.sampled_from(MODES),
)
def test_mul_div_round_on_arrays_matches_python_ints(
    amounts: list[int], b: int, den: int, mode: Rounding
) -> None:
    # the documented precondition: |a|/den * |b| and den * |b| stay inside int64
    assume(all(abs(a) // den * abs(b) <= INT64_MAX // 2 for a in amounts))
    assume(den * abs(b) <= INT64_MAX // 2)
    want = [exact_round(Fraction(a * b, den), mode) for a in amounts]
    assert mul_div_round(np.array(amounts, dtype=np.int64), b, den, mode).tolist() == want
    assert [mul_div_round(a, b, den, mode) for a in amounts] == want


@given(
    pairs=st.lists(st.tuples(AMOUNTS, st.integers(0, 10_000)), min_size=1, max_size=10),
    mode=st.sampled_from(MODES),
)
def test_percent_of_large_amounts_does_not_overflow(
    pairs: list[tuple[int, int]], mode: Rounding
) -> None:
    amounts = np.array([a for a, _ in pairs], dtype=np.int64)
    bps = np.array([bp for _, bp in pairs], dtype=np.int64)
    want = [exact_round(Fraction(a * bp, 10_000), mode) for a, bp in pairs]
    assert mul_div_round(amounts, bps, 10_000, mode).tolist() == want


@pytest.mark.parametrize(
    ("amount", "rate", "src", "dst", "mode", "want"),
    [
        (2000, "0.1385", "CNY", "USD", "half_up", 277),  # 20.00 CNY -> 2.77 USD (T03)
        (3000, "0.1385", "CNY", "USD", "half_up", 416),  # 4.155 -> 4.16
        (1000, "0.1385", "CNY", "USD", "half_up", 139),  # 1.385 -> 1.39
        (1000, "0.1385", "CNY", "USD", "half_even", 138),  # 1.385 -> 1.38
        (-1000, "0.1385", "CNY", "USD", "half_up", -139),
        (100, "150.25", "USD", "JPY", "half_up", 150),  # 1.00 USD -> 150 JPY
        (1000, "0.0067", "JPY", "USD", "half_up", 670),  # 1000 JPY -> 6.70 USD
        (100, "0.376", "USD", "BHD", "half_up", 376),  # 1.00 USD -> 0.376 BHD
        (1, "7.1234", "USD", "CNY", "half_up", 7),  # 0.01 USD -> 0.071234 CNY
    ],
)
def test_convert_minor(
    amount: int, rate: str, src: str, dst: str, mode: Rounding, want: int
) -> None:
    assert convert_minor(amount, parse_rate(rate), src, dst, mode) == want


@given(
    amount=st.integers(-(10**12), 10**12),
    rate=st.sampled_from(("0.1385", "7.1234", "150.25", "0.0067", "1", "0.0000000001")),
    src=st.sampled_from(("CNY", "JPY", "BHD")),
    dst=st.sampled_from(("USD", "JPY", "KWD")),
    mode=st.sampled_from(MODES),
)
def test_convert_minor_is_one_exact_rounding(
    amount: int, rate: str, src: str, dst: str, mode: Rounding
) -> None:
    num, den = parse_rate(rate)
    major = Fraction(amount, 10 ** exponent(src)) * Fraction(num, den)
    assert convert_minor(amount, (num, den), src, dst, mode) == exact_round(
        major * 10 ** exponent(dst), mode
    )


@pytest.mark.parametrize("text", ["1e3", "1_000", "\u0663", "Infinity", "NaN", "0x10", "1,5"])
def test_quantities_and_money_take_plain_ascii_decimals_only(text: str) -> None:
    with pytest.raises(MoneyError):
        parse_quantity(text)
    with pytest.raises(MoneyError):
        parse_money(text, "CNY")


def test_the_columnar_path_reads_quantities_like_the_json_path() -> None:
    import polars as pl

    from engine.core.columns import quantity_column as _milli_column
    from engine.pricing.cart import cart_quantity

    texts = [
        "5",
        "05",
        "2.5",
        "2.500",
        ".5",
        "+2",
        " 3 ",
        "2.",
        "1e3",
        "1_000",
        "\u0663",
        "-2",
        "2.0005",
        "abc",
    ]
    columnar = _milli_column(pl.Series(texts)).tolist()
    one_by_one = [cart_quantity(t) for t in texts]
    # both give the same thousandths for every valid quantity and refuse the same texts
    assert [max(c, -1) if c > 0 else -1 for c in columnar] == [
        q if q > 0 else -1 for q in one_by_one
    ]
    assert columnar[:8] == [5000, 5000, 2500, 2500, 500, 2000, 3000, 2000]

"""Request and response schemas of the HTTP API (pydantic), as documented at ``/docs``.

Requests are checked for shape only: money and quantities arrive as decimal strings and the
engine judges their meaning (a quantity of "-1" is a line error ``bad_quantity``, not a 422).
Responses are described here for the OpenAPI document; the engine builds the quote bodies.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictStr

ScalarAttr = StrictStr | int | bool


def _decimal_text(value: Any) -> Any:
    """Whole JSON numbers are accepted as text; fractional ones would lose exactness."""
    if isinstance(value, bool):
        raise ValueError('must be a decimal string like "2" or "1.5", not true/false')
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        raise ValueError(
            'must be a decimal string like "1.5": a fractional JSON number is not exact'
        )
    return value


def _id_text(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


DecimalText = Annotated[StrictStr, BeforeValidator(_decimal_text)]
IdText = Annotated[StrictStr, BeforeValidator(_id_text)]


class CustomerIn(BaseModel):
    """Who is buying; any key besides these is a custom attribute (``customer.<key>``)."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, ScalarAttr] = Field(init=False)

    id: IdText | None = None
    tier: StrictStr | None = None
    region: StrictStr | None = None
    group: StrictStr | None = None
    segment: StrictStr | None = None


class LineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: IdText | None = Field(None, description="defaults to the 1-based position")
    sku: StrictStr
    qty: DecimalText = Field(description='decimal string, at most 3 fractional digits: "2", "1.5"')
    unit: StrictStr | None = Field(None, description="defaults to the SKU's base unit")
    manual_discount: StrictStr | None = Field(
        None,
        description='a discount requested by an agent, as a percentage: "7%" (checked against approval bands)',
    )


class CartIn(BaseModel):
    """One cart, as in docs/engine-api.md."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "currency": "CNY",
                    "date": "2026-11-22",
                    "customer": {"id": "D0001", "tier": "gold", "region": "CN"},
                    "lines": [
                        {"sku": "TL-0001", "qty": "2"},
                        {"sku": "CB-0001", "qty": "12.5", "unit": "m"},
                    ],
                }
            ]
        },
    )

    currency: StrictStr | None = Field(None, description="defaults to the ruleset currency")
    date: StrictStr | None = Field(
        None, description="ISO date or timestamp; defaults to today in the ruleset time zone"
    )
    customer: CustomerIn | None = None
    channel: StrictStr | None = None
    project: StrictStr | None = None
    trade_term: StrictStr | None = None
    explain: StrictBool | None = Field(
        None,
        description="true: also list the promotions that were candidates but did not apply, with the reason",
    )
    lines: list[LineIn]

    def to_engine(self) -> dict[str, Any]:
        """The plain cart dict ``engine.api.quote`` takes (unset fields left out)."""
        return self.model_dump(exclude_none=True)


class OrderLineIn(LineIn):
    expected_net: DecimalText | None = Field(
        None,
        description="the net the client showed for this line; a different one is price_changed",
    )


class OrderIn(CartIn):
    """An order: a cart with an id (the idempotency key of a commit), see docs/orders.md."""

    id: IdText = Field(
        min_length=1, max_length=200, description="the order id; committing it twice commits once"
    )
    referrer: StrictStr | None = Field(None, description="who referred the order (commissions)")
    rebate_payment: DecimalText | None = Field(
        None, description="rebate balance used as payment, within the ruleset's cap"
    )
    expected_total: DecimalText | None = Field(None, description="the net total the client showed")
    lines: list[OrderLineIn]  # type: ignore[assignment]


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    carts: list[CartIn]


class RulesetFilesIn(BaseModel):
    """A whole ruleset: display path -> source text."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "files": {
                        "rules/main.rule": 'ruleset "demo" currency CNY timezone "Asia/Shanghai"'
                        " rounding half_up\n"
                    }
                }
            ]
        },
    )

    files: dict[StrictStr, StrictStr] = Field(min_length=1)


# ---- responses (documentation; routes return these shapes) ---------------------------


class AdjustmentOut(BaseModel):
    rule: str
    kind: str
    amount: str
    source: str | None = None


class LineErrorOut(BaseModel):
    code: str
    message: str


class SubLineOut(BaseModel):
    """One part of a line split by a special price (stage 3), the special one first."""

    special: bool
    qty: str = Field(description="in the SKU's base unit")
    unit_price: str
    pricing_unit: str
    list_amount: str
    adjustments: list[AdjustmentOut] = []
    net_amount: str
    tax: str
    gross_amount: str


class LineOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    sku: str
    qty: str
    status: str
    unit: str | None = None
    base_qty: str | None = None
    base_unit: str | None = None
    price_list: str | None = None
    unit_price: str | None = None
    pricing_unit: str | None = None
    list_amount: str | None = None
    adjustments: list[AdjustmentOut] = []
    net_amount: str | None = None
    tax_rate: str | None = None
    tax: str | None = None
    gross_amount: str | None = None
    error: LineErrorOut | None = None
    sublines: list[SubLineOut] | None = Field(
        default=None,
        description="only on a line split by a special price; the line's figures are their sums",
    )


class TotalsOut(BaseModel):
    list: str
    discount: str
    net: str
    tax: str
    gross: str


class QuoteOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    ruleset_version: str
    currency: str
    date: str
    lines: list[LineOut]
    errors: list[dict[str, Any]]
    totals: TotalsOut


class BatchOut(BaseModel):
    ruleset_version: str
    quotes: list[QuoteOut]


class HealthOut(BaseModel):
    status: str
    ruleset_version: str | None


class RulesetOut(BaseModel):
    name: str
    version: str
    currency: str
    timezone: str
    rounding: str
    source: str = Field(description='"store" (published) or the rules directory it came from')
    published_at: str | None
    files: list[str]
    rules: list[str]


class CheckOut(BaseModel):
    ok: bool
    diagnostics: list[dict[str, Any]]
    rendered: str


class PublishOut(BaseModel):
    version: str
    previous_version: str | None
    changed: bool
    published_at: str | None


class ErrorItem(BaseModel):
    model_config = ConfigDict(extra="allow")

    code: str
    message: str
    field: str | None = None
    line: str | int | None = None
    source: str | None = None


class ErrorOut(BaseModel):
    """The one shape of every error response."""

    code: str
    message: str
    errors: list[ErrorItem]

"""The fields a rule may read, their types and where they may appear.

Names resolve here, at check time, never at pricing time.

| field | type | scope |
| --- | --- | --- |
| customer.id / tier / region / group, channel, project, trade_term, currency | text | cart |
| customer.<attr> (declared with ``attribute customer.<attr>``) | text | cart |
| date | date | cart |
| sku, category, brand, tax_class, item.<attr> (catalog columns or declared) | text | item |
| qty (base quantity), amount (the line's list amount) | quantity, money | line |
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FieldType = Literal["text", "date", "quantity", "money"]
Scope = Literal["cart", "item", "line"]


@dataclass(frozen=True, slots=True)
class FieldInfo:
    name: str
    type: FieldType
    scope: Scope


CART_TEXT_FIELDS = (
    "customer.id",
    "customer.tier",
    "customer.region",
    "customer.group",
    "channel",
    "project",
    "trade_term",
    "currency",
)
ITEM_TEXT_FIELDS = ("sku", "category", "brand", "tax_class")

BUILTIN_FIELDS: dict[str, FieldInfo] = {
    **{name: FieldInfo(name, "text", "cart") for name in CART_TEXT_FIELDS},
    "date": FieldInfo("date", "date", "cart"),
    **{name: FieldInfo(name, "text", "item") for name in ITEM_TEXT_FIELDS},
    "qty": FieldInfo("qty", "quantity", "line"),
    "amount": FieldInfo("amount", "money", "line"),
}


@dataclass(frozen=True, slots=True)
class Schema:
    fields: dict[str, FieldInfo]

    @staticmethod
    def build(customer_attrs: set[str], item_attrs: set[str]) -> Schema:
        fields = dict(BUILTIN_FIELDS)
        for attr in customer_attrs:
            fields[f"customer.{attr}"] = FieldInfo(f"customer.{attr}", "text", "cart")
        for attr in item_attrs:
            fields[f"item.{attr}"] = FieldInfo(f"item.{attr}", "text", "item")
        return Schema(fields)

    def get(self, name: str) -> FieldInfo | None:
        return self.fields.get(name)


def table_column(field: str) -> str:
    """The data-table column a ``keyed by`` field matches: ``customer.id`` -> ``customer_id``."""
    return field.replace(".", "_")


#: metrics a partner-tier level may test, with their type
METRICS: dict[str, str] = {
    "purchases": "money",  # net purchases in the period, before returns
    "returns": "money",  # net amount returned in the period
    "net_purchases": "money",  # purchases minus returns
    "orders": "count",  # distinct orders
    "leads_submitted": "count",
    "leads_converted": "count",
    "merchants_referred": "count",
    "partners_recruited": "count",
}

#: a partner-tier metric read from the ``facts`` table (one row per partner and period)
FACT_METRICS = ("certified_staff",)

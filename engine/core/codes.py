"""The engine's codes, each with one spelling: line errors, benefit kinds, adjustment
stages and approval statuses. Arrays hold them as int64 (an ``IntEnum`` compares and
stores as its integer); responses write ``.code``.

>>> LineError.NO_FX_RATE.code
'no_fx_rate'
>>> LINE_ERRORS[LineError.UNKNOWN_SKU]
'unknown_sku'
>>> BenefitKind(2).code
'fixed_price'
"""

from __future__ import annotations

from enum import IntEnum


class _Coded(IntEnum):
    @property
    def code(self) -> str:
        """The name written in responses and frames."""
        return self.name.lower()


class LineError(_Coded):
    """Why a line could not be priced; ``OK`` when it was."""

    OK = 0
    UNKNOWN_SKU = 1
    UNKNOWN_UNIT = 2
    BAD_QUANTITY = 3
    NO_PRICE = 4
    NO_FX_RATE = 5
    AMOUNT_TOO_LARGE = 6


class BenefitKind(_Coded):
    """What a discount takes off: a percentage, an amount per unit, or a fixed price per unit."""

    PERCENT_OFF = 0
    AMOUNT_OFF = 1
    FIXED_PRICE = 2


class AdjustmentStage(_Coded):
    """The stage that made an adjustment: line promotions, sets (combos, pools), order
    promotions, or a manual discount."""

    LINE = 0
    SET = 1
    ORDER = 2
    MANUAL = 3


class ApprovalStatus(_Coded):
    """A line's manual-discount and floor verdict (stage 9)."""

    OK = 0
    NEEDS_APPROVAL = 1
    APPROVED = 2
    REJECTED = 3


LINE_ERRORS = tuple(e.code for e in LineError)
BENEFIT_KINDS = tuple(k.code for k in BenefitKind)
ADJUSTMENT_STAGES = tuple(s.code for s in AdjustmentStage)
APPROVAL_STATUSES = tuple(s.code for s in ApprovalStatus)

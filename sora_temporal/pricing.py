"""What a video costs: a price table of USD per second of video, by model and size.

Shipped with OpenAI's published Sora 2 prices (:data:`SORA_2_PRICES`). A deployment behind a
gateway with prices of its own overrides them with JSON, from a file (``PRICE_TABLE_FILE``) or the
environment (``PRICE_TABLE_JSON``, applied after the file)::

    {"sora-2": {"1280x720": 0.12, "720x1280": 0.12},
     "gemini/veo-3.1-generate-preview": {"*": 0.40},
     "default": 0.60}

Each model maps sizes (``WIDTHxHEIGHT``, or ``"*"`` for any size) to USD per second; an override
replaces the prices it names and keeps the others. **Unknown model or size** (never free by
accident): a dated Sora snapshot (``sora-2-2025-10-06``) is priced as its base model; anything else
the table does not name costs the table's ``default`` when it has one, else the highest price in the
table. A price of ``0`` is only ever one somebody wrote down.

Pure: safe to import anywhere; money is :class:`~decimal.Decimal`, and budgets count whole
micro-dollars (:attr:`Estimate.micros`), so ten $0.40 jobs fill a $4.00 budget exactly.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal
from enum import StrEnum
from typing import Any

from sora_temporal.validation import parse_size, sora_base_model

ANY_SIZE = "*"
DEFAULT_KEY = "default"
MICROS_PER_USD = 1_000_000

# OpenAI's published prices for the Sora 2 API (per second of video, launched 2025-10-07).
SORA_2_PRICES: dict[str, dict[str, Decimal]] = {
    "sora-2": {"720x1280": Decimal("0.10"), "1280x720": Decimal("0.10")},
    "sora-2-pro": {
        "720x1280": Decimal("0.30"),
        "1280x720": Decimal("0.30"),
        "1024x1792": Decimal("0.50"),
        "1792x1024": Decimal("0.50"),
    },
}


class PriceRule(StrEnum):
    """How a job's price per second was found."""

    LISTED = "listed"
    """The model and size are in the table (a snapshot counts as its base model)."""
    ANY_SIZE = "any_size"
    """The model is in the table with a ``"*"`` price for every size."""
    DEFAULT = "default"
    """Unknown model or size: the table's ``default`` price."""
    HIGHEST = "highest"
    """Unknown model or size, no ``default``: the highest price in the table."""


@dataclass(frozen=True)
class Estimate:
    """A job's estimated cost.

    Attributes:
        usd: The cost in US dollars: price per second times seconds.
        usd_per_second: The price used.
        rule: How the price was found.
    """

    usd: Decimal
    usd_per_second: Decimal
    rule: PriceRule

    @property
    def micros(self) -> int:
        """The cost in whole micro-dollars, rounded up (what budgets count)."""
        return int((self.usd * MICROS_PER_USD).to_integral_value(rounding=ROUND_CEILING))


@dataclass(frozen=True)
class PriceTable:
    """USD per second of video by model and size, with the rule for what it does not list.

    Attributes:
        prices: Model → size (or ``"*"``) → USD per second.
        default: The price of a model or size the table does not list; ``None``: the highest listed price.
    """

    prices: Mapping[str, Mapping[str, Decimal]] = field(default_factory=lambda: SORA_2_PRICES)
    default: Decimal | None = None

    def per_second(self, model: str, size: str) -> tuple[Decimal, PriceRule]:
        """The price of one second of ``model`` at ``size``, and how it was found."""
        for name in (model, sora_base_model(model)):
            sizes = self.prices.get(name) if name else None
            if sizes is None:
                continue
            if size in sizes:
                return sizes[size], PriceRule.LISTED
            if ANY_SIZE in sizes:
                return sizes[ANY_SIZE], PriceRule.ANY_SIZE
        if self.default is not None:
            return self.default, PriceRule.DEFAULT
        return self.highest, PriceRule.HIGHEST

    def estimate(self, model: str, size: str, seconds: int) -> Estimate:
        """What a job of ``seconds`` seconds of ``model`` at ``size`` costs."""
        price, rule = self.per_second(model, size)
        return Estimate(usd=price * Decimal(max(seconds, 0)), usd_per_second=price, rule=rule)

    @property
    def highest(self) -> Decimal:
        """The highest price the table lists (its ``default`` included)."""
        listed = [price for sizes in self.prices.values() for price in sizes.values()]
        if self.default is not None:
            listed.append(self.default)
        return max(listed)

    def overridden(self, text: str, source: str) -> PriceTable:
        """This table with the prices of the JSON ``text`` (from ``source``, for messages) on top.

        Raises:
            ValueError: Not JSON, not of the documented shape, or a price that is negative or not finite.
        """
        try:
            data: Any = json.loads(text, parse_float=Decimal, parse_int=Decimal)
        except ValueError as err:
            raise ValueError(f"{source} is not valid JSON: {err}") from None
        if not isinstance(data, dict):
            raise ValueError(f"{source} must be a JSON object of model -> {{size: USD per second}}")
        prices = {model: dict(sizes) for model, sizes in self.prices.items()}
        default = self.default
        for model, entry in data.items():
            if model == DEFAULT_KEY:
                default = _price(entry, f"{source}: default")
                continue
            if not isinstance(entry, dict) or not entry:
                raise ValueError(
                    f'{source}: {model!r} must map sizes (WIDTHxHEIGHT or "*") to USD per second'
                )
            sizes = prices.setdefault(model, {})
            for size, value in entry.items():
                if size != ANY_SIZE:
                    try:
                        parse_size(size)
                    except ValueError:
                        raise ValueError(
                            f'{source}: size {size!r} of {model!r} must look like 1280x720 (or be "*")'
                        ) from None
                sizes[size] = _price(value, f"{source}: {model} {size}")
        if not any(prices.values()) and default is None:
            raise ValueError(f"{source} leaves the price table empty")
        return PriceTable(prices=prices, default=default)

    def as_json(self) -> dict[str, Any]:
        """The table as JSON values (floats), for ``starter.py spend --json`` and logs."""
        out: dict[str, Any] = {m: {s: float(p) for s, p in sizes.items()} for m, sizes in self.prices.items()}
        if self.default is not None:
            out[DEFAULT_KEY] = float(self.default)
        return out


def _price(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | int | float):
        raise ValueError(f"{where} must be a number of USD per second, got {value!r}")
    price = Decimal(str(value)) if not isinstance(value, Decimal) else value
    if not price.is_finite() or price < 0 or not math.isfinite(float(price)):
        raise ValueError(f"{where} must be a finite, non-negative number of USD per second, got {value}")
    return price


def usd(micros: int) -> Decimal:
    """Micro-dollars as dollars."""
    return Decimal(micros) / MICROS_PER_USD


def usd_from_text(text: str, name: str) -> Decimal:
    """A budget or price given as text (an environment variable named ``name``).

    Raises:
        ValueError: Not a finite, non-negative number.
    """
    try:
        value = Decimal(text.strip())
    except ArithmeticError:
        raise ValueError(f"{name} must be a number of US dollars, got {text!r}") from None
    if not value.is_finite() or value < 0:
        raise ValueError(f"{name} must be a finite, non-negative number of US dollars, got {text!r}")
    return value

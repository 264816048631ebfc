"""The price table: OpenAI's published Sora 2 prices, overrides, and what an unlisted model costs."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from sora_temporal.pricing import PriceRule, PriceTable
from sora_temporal.settings import Settings


def test_the_shipped_prices_are_openais_sora_2_prices() -> None:
    table = PriceTable()

    assert table.estimate("sora-2", "1280x720", 4).usd == Decimal("0.40")
    assert table.estimate("sora-2", "720x1280", 12).usd == Decimal("1.20")
    assert table.estimate("sora-2-pro", "1280x720", 8).usd == Decimal("2.40")
    assert table.estimate("sora-2-pro", "1792x1024", 4).usd == Decimal("2.00")
    assert table.estimate("sora-2-pro", "1024x1792", 4).micros == 2_000_000


def test_a_dated_snapshot_costs_what_its_base_model_costs() -> None:
    estimate = PriceTable().estimate("sora-2-pro-2025-10-06", "1024x1792", 4)

    assert (estimate.usd_per_second, estimate.rule) == (Decimal("0.50"), PriceRule.LISTED)


@pytest.mark.parametrize(
    ("model", "size"),
    [("gemini/veo-3.1-generate-preview", "1920x1080"), ("sora-2", "1024x1792"), ("", "1x1")],
    ids=["unknown model", "size the model does not list", "empty"],
)
def test_an_unlisted_model_or_size_costs_the_highest_listed_price_never_nothing(
    model: str, size: str
) -> None:
    estimate = PriceTable().estimate(model, size, 10)

    assert estimate.rule is PriceRule.HIGHEST
    assert estimate.usd_per_second == Decimal("0.50")
    assert estimate.usd == Decimal("5.00")


def test_a_default_entry_prices_what_the_table_does_not_list() -> None:
    table = PriceTable().overridden('{"default": 0.25}', "test")

    assert table.estimate("runwayml/gen4_turbo", "1280x720", 4).usd == Decimal("1.00")
    assert table.estimate("runwayml/gen4_turbo", "1280x720", 4).rule is PriceRule.DEFAULT
    assert table.estimate("sora-2", "1280x720", 4).usd == Decimal("0.40")  # listed prices stay


def test_an_override_replaces_the_prices_it_names_and_keeps_the_others() -> None:
    table = PriceTable().overridden(
        json.dumps({"sora-2": {"1280x720": 0.12}, "gemini/veo-3.1-generate-preview": {"*": 0.4}}), "test"
    )

    assert table.estimate("sora-2", "1280x720", 4).usd == Decimal("0.48")
    assert table.estimate("sora-2", "720x1280", 4).usd == Decimal("0.40")
    veo = table.estimate("gemini/veo-3.1-generate-preview", "1920x1080", 5)
    assert (veo.usd, veo.rule) == (Decimal("2.0"), PriceRule.ANY_SIZE)


def test_ten_jobs_at_forty_cents_add_up_to_exactly_four_dollars() -> None:
    estimate = PriceTable().estimate("sora-2", "1280x720", 4)

    assert sum([estimate.micros] * 10) == 4_000_000


@pytest.mark.parametrize(
    "text",
    [
        "[1, 2]",
        '{"sora-2": 0.1}',
        '{"sora-2": {"big": 0.1}}',
        '{"sora-2": {"1280x720": -1}}',
        '{"sora-2": {"1280x720": "cheap"}}',
        '{"default": NaN}',
        "not json",
    ],
)
def test_a_price_table_that_cannot_be_used_is_refused_with_its_source(text: str) -> None:
    with pytest.raises(ValueError, match="PRICE_TABLE_JSON"):
        Settings.from_env({"PRICE_TABLE_JSON": text})


def test_the_table_is_read_from_a_file_then_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text('{"sora-2": {"1280x720": 0.12, "720x1280": 0.12}, "default": 1}')

    spend = Settings.from_env({"PRICE_TABLE_FILE": str(path), "PRICE_TABLE_JSON": '{"default": 0.7}'}).spend

    assert spend.prices.estimate("sora-2", "720x1280", 4).usd == Decimal("0.48")
    assert spend.prices.default == Decimal("0.7")


def test_budgets_and_the_salvage_window_come_from_the_environment() -> None:
    spend = Settings.from_env(
        {"BUDGET_USD_PER_DAY": "25", "API_KEY_BUDGET_USD_PER_DAY": "2.5", "SALVAGE_WINDOW_SECONDS": "0"}
    ).spend

    assert (spend.budget_usd_per_day, spend.api_key_budget_usd_per_day) == (Decimal(25), Decimal("2.5"))
    assert spend.salvage_window_seconds == 0
    assert Settings.from_env({}).spend.salvage_window_seconds == 3600
    assert Settings.from_env({}).spend.budget_usd_per_day is None


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"BUDGET_USD_PER_DAY": "-1"}, "BUDGET_USD_PER_DAY"),
        ({"API_KEY_BUDGET_USD_PER_DAY": "lots"}, "API_KEY_BUDGET_USD_PER_DAY"),
        ({"SALVAGE_WINDOW_SECONDS": "nan"}, "SALVAGE_WINDOW_SECONDS"),
        ({"SALVAGE_POLL_SECONDS": "0.1"}, "SALVAGE_POLL_SECONDS"),
        ({"SALVAGE_WINDOW_SECONDS": "86400", "SALVAGE_POLL_SECONDS": "1"}, "SALVAGE_POLL_SECONDS"),
    ],
)
def test_unusable_budgets_and_salvage_settings_are_refused_by_name(env: dict[str, str], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        Settings.from_env(env)

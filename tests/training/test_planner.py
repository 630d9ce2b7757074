import math

import pytest

from training.mixture_weights import llama1_weights, natural_weights
from training.planner import CHINCHILLA_TOKENS_PER_PARAM, LLAMA1_EPOCHS, LLAMA1_SAMPLING, format_plan, plan_data


def test_hand_computed_plan():
    # 1e6 params x 20 = 2e7 tokens. books: budget 0.25 * 2e7 = 5e6, has 1e6, may repeat 2.23x -> usable 2.23e6,
    # shortfall 5e6 - 2.23e6 = 2.77e6, to collect 2.77e6 / 2.23 = 1.2421525e6, epochs needed 5.
    # wikipedia: budget 1.5e7, has 1e7 x 2.45 = 2.45e7 usable, epochs needed 1.5, no shortfall.
    plan = plan_data(params=1e6, weights={"books": 0.25, "wikipedia": 0.75},
                     available={"books": 1_000_000, "wikipedia": 10_000_000})
    assert plan.tokens_needed == 2e7
    books, wiki = plan.domains
    assert (books.domain, wiki.domain) == ("books", "wikipedia")
    assert books.budget_tokens == pytest.approx(5e6)
    assert books.usable_tokens == pytest.approx(2.23e6)
    assert books.shortfall_tokens == pytest.approx(2.77e6)
    assert books.tokens_to_collect == pytest.approx(1.2421525e6)
    assert books.epochs_needed == pytest.approx(5.0)
    assert wiki.budget_tokens == pytest.approx(1.5e7)
    assert wiki.epochs_needed == pytest.approx(1.5)
    assert wiki.shortfall_tokens == 0.0
    assert plan.total_shortfall == pytest.approx(2.77e6)


def test_seven_billion_and_defaults():
    plan = plan_data(params=7e9, weights=llama1_weights().weights)
    assert plan.tokens_needed == pytest.approx(1.4e11)  # 7e9 x 20
    assert math.fsum(d.budget_tokens for d in plan.domains) == pytest.approx(1.4e11)
    assert all(d.shortfall_tokens is None for d in plan.domains)
    assert "1.4e+11 tokens needed" in format_plan(plan)


def test_domain_missing_from_manifest_and_unknown_domain_epochs():
    plan = plan_data(params=1e3, weights={"github": 0.5, "code2": 0.5}, available={"github": 0, "extra": 10},
                     epochs={"code2": 3.0})
    rows = {d.domain: d for d in plan.domains}
    assert rows["github"].epochs_needed == math.inf and rows["github"].shortfall_tokens == pytest.approx(1e4)
    assert rows["code2"].max_epochs == 3.0 and rows["code2"].tokens_to_collect == pytest.approx(1e4 / 3)
    assert rows["extra"].weight == 0 and rows["extra"].shortfall_tokens == 0
    with pytest.raises(ValueError):
        plan_data(params=0, weights={"books": 1.0})


def test_published_numbers():
    assert CHINCHILLA_TOKENS_PER_PARAM == 20
    assert LLAMA1_EPOCHS["wikipedia"] == 2.45 and LLAMA1_EPOCHS["books"] == 2.23
    assert math.fsum(LLAMA1_SAMPLING.values()) == pytest.approx(1.0, abs=1e-12)


def test_natural_weights_are_token_shares():
    manifest = {"domains": {"books": {"tokens": 300}, "wikipedia": {"tokens": 100}}}
    w = natural_weights(manifest, "m.json", date="2026-11-28")
    assert w.weights == {"books": 0.75, "wikipedia": 0.25} and w.method == "natural"
    sub = llama1_weights(["books", "wikipedia"], date="2026-11-28")
    assert sub.weights == pytest.approx({"books": 0.5, "wikipedia": 0.5})
    with pytest.raises(ValueError, match="no LLaMA-1 proportion"):
        llama1_weights(["books", "poetry"])

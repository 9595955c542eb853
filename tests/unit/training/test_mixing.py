import pytest

from palindrom.training.mixing import plan_mix
from palindrom.training.spec import DateRange, Source

DATES = DateRange.model_validate({"from": "-30d"})


def source(name, weight, cap=1.0):
    return Source(name=name, dates=DATES, weight=weight, max_upsample=cap)


def by_name(plan):
    return {m.source: m for m in plan}


def test_the_most_abundant_source_is_used_once_and_a_small_one_repeated_to_its_share():
    plan = by_name(plan_mix((source("big", 0.8), source("small", 0.2, cap=4)), {"big": 8000, "small": 1000}))
    assert plan["big"].repeat == 1.0
    assert plan["small"].repeat == pytest.approx(2.0)  # 0.2 / 0.8 * 8000 = 2000 tokens wanted
    assert not plan["small"].capped
    assert plan["small"].achieved_share == pytest.approx(0.2)


def test_the_cap_holds_a_source_below_its_share_and_says_so():
    plan = by_name(plan_mix((source("big", 0.5), source("small", 0.5, cap=3)), {"big": 9000, "small": 1000}))
    assert plan["small"].repeat == 3.0
    assert plan["small"].capped
    assert plan["small"].achieved_share == pytest.approx(3000 / 12000)
    assert plan["small"].target_share == 0.5


def test_an_empty_source_is_left_out_and_the_others_share_its_weight():
    plan = by_name(plan_mix((source("a", 0.6), source("b", 0.2, cap=4), source("none", 0.2)), {"a": 600, "b": 100}))
    assert plan["none"].repeat == 0.0
    assert plan["none"].achieved_share == 0.0
    assert plan["a"].repeat == 1.0
    assert plan["b"].repeat == pytest.approx(200 / 100 * 1.0)  # b's share of the present weight is 0.25
    assert sum(m.achieved_share for m in plan.values()) == pytest.approx(1.0)


def test_no_tokens_at_all_gives_an_empty_mix():
    plan = plan_mix((source("a", 1.0),), {})
    assert plan[0].repeat == 0.0
    assert plan[0].achieved_share == 0.0

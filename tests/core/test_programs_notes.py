"""What a plan says about its input, on hand-built frames (docs/programs.md, "Bad input")."""

from __future__ import annotations

from shopsync.core.planner import plan_frames
from tests.core.frames_kit import DAY, T0, Shop, policy

EVERY: dict[str, dict[str, object]] = {
    "reviews": {},
    "winback": {},
    "replenishment": {},
    "warranty": {},
}


def test_orders_after_as_of_are_left_out_and_counted_in_a_note() -> None:
    shop = Shop().customer("c1").order("o1", "c1", T0).order("o2", "c1", T0 + 10 * DAY)
    at = T0 + 5 * DAY
    result = plan_frames(shop.frames(at), policy(**EVERY), at)
    assert any(n.startswith("1 order(s) placed after as_of") for n in result.notes)
    assert shop.frames(at).orders["id"].to_list() == ["o1"]
    later = plan_frames(shop.frames(T0 + 10 * DAY), policy(**EVERY), T0 + 10 * DAY)
    assert not any("placed after as_of" in n for n in later.notes)


def test_a_shop_without_orders_plans_nothing_and_says_so() -> None:
    shop = Shop().customer("c1")
    result = plan_frames(shop.frames(T0), policy(**EVERY), T0)
    assert list(result) == [] and result.held == ()
    assert any("no customer orders placed by" in n for n in result.notes)


def test_no_outbox_means_the_cap_counts_only_this_plan_and_the_plan_says_so() -> None:
    shop = Shop().customer("c1").order("o1", "c1", T0).no_outbox()
    at = T0 + 90 * DAY
    result = plan_frames(shop.frames(at), policy(**EVERY), at)
    assert any(n.startswith("no outbox table in the store") for n in result.notes)
    with_outbox = Shop().customer("c1").order("o1", "c1", T0)
    assert not any(
        "no outbox" in n for n in plan_frames(with_outbox.frames(at), policy(), at).notes
    )

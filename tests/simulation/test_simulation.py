"""The simulated clock: customers buy by their model, answer messages with a known effect,
use their codes, and the truth says who bought because of what."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from pydantic import SecretStr

import shopsync
from shopsync.core.actions import WinBack
from shopsync.models import ConsentState, Money
from shopsync.outbox import apply
from shopsync.sinks import Brand, Email, Platform
from shopsync.store import Store
from shopsync.testing import CDNOW, Inbox, ShopState, Simulation, Uplift, emulate, generate_shop

END = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def shop(seed: int = 1, customers: int = 300) -> ShopState:
    return generate_shop(
        platform="shopify",
        shop="sim.example",
        seed=seed,
        customers=customers,
        products=10,
        end=END,
        years=1.0,
        buying=CDNOW,
    )


def buyers(state: ShopState) -> list[str]:
    assert state.population is not None
    return sorted(state.population.buyers)


def test_the_clock_moves_the_shop_and_customers_keep_buying() -> None:
    state = shop()
    before = len(state.orders)
    sim = Simulation(state, seed=1)
    assert sim.now == END and state.clock() == END
    placed = sim.advance(days=60)
    assert sim.now == END + dt.timedelta(days=60) == state.clock()
    # about 275 alive-or-not buyers at 0.055 purchases a week: dozens of orders in 60 days
    assert 10 < len(placed) == len(state.orders) - before
    for made in placed:
        order = state.orders[made.order_id]
        assert END <= order.created_at == made.at < sim.now
        assert order.customer_id == made.customer_id and not made.incremental
        assert order.total == made.value and made.discount == Money.zero("USD")
    assert [p.at for p in placed] == sorted(p.at for p in placed)
    assert sim.truth.counterfactual() == placed and sim.truth.incremental() == []


def test_only_a_customer_who_opened_and_clicked_buys_because_of_a_message() -> None:
    state = shop()
    effect = Uplift(1.0, window_days=7, open_rate=0.5, click_rate=0.5)
    sim = Simulation(state, seed=2, uplift={"winback": effect})
    for cid in buyers(state)[:200]:
        sim.receive(cid, "winback")
    sim.advance(days=10)
    seen = sim.truth.exposures
    assert all(e.opened for e in seen if e.clicked) and all(e.clicked for e in seen if e.responds)
    assert [e.customer_id for e in seen if e.responds] == [e.customer_id for e in seen if e.clicked]
    # Binomial(200, 0.5) opens and Binomial(200, 0.25) clicks, 4 sigma either side
    opened, clicked = sum(e.opened for e in seen), sum(e.clicked for e in seen)
    assert 72 <= opened <= 128 and 25 <= clicked <= 75
    truth = sim.truth.programs()["winback"]
    assert (truth.opened, truth.clicked, truth.incremental_orders) == (opened, clicked, clicked)
    assert effect.per_message == 0.25 and Uplift(0.3).per_message == 0.3
    with pytest.raises(ValueError, match="click_rate must be in"):
        Uplift(0.1, click_rate=1.2)


def test_rates_of_one_leave_a_simulation_as_it_was() -> None:
    """The funnel draws come from their own stream: the default rates change no outcome."""

    def outcome(effect: Uplift) -> list[tuple[str, bool, dt.datetime | None]]:
        state = shop()
        sim = Simulation(state, seed=2, uplift={"winback": effect})
        for cid in buyers(state)[:50]:
            sim.receive(cid, "winback")
        return [(e.customer_id, e.responds, e.response_at) for e in sim.truth.exposures]

    plain = outcome(Uplift(0.5, window_days=7))
    assert plain == outcome(Uplift(0.5, window_days=7, open_rate=1.0, click_rate=1.0))
    assert any(r for _, r, _ in plain) and not all(r for _, r, _ in plain)


def test_a_known_uplift_gives_about_that_many_extra_orders_within_the_window() -> None:
    state = shop()
    sim = Simulation(state, seed=2, uplift={"winback": Uplift(0.5, window_days=7)})
    treated = buyers(state)[:200]
    for cid in treated:
        assert sim.receive(cid, "winback") is not None
    sim.advance(days=10)
    extra = sim.truth.incremental("winback")
    # Binomial(200, 0.5): 100 +- 7 (one standard deviation); 4 sigma either side
    assert 72 <= len(extra) <= 128
    responders = [e for e in sim.truth.exposures if e.responds]
    assert len(responders) == len(extra)
    for made, exposure in zip(
        sorted(extra, key=lambda p: p.customer_id),
        sorted(responders, key=lambda e: e.customer_id),
        strict=True,
    ):
        assert made.customer_id == exposure.customer_id and made.at == exposure.response_at
        assert END <= made.at < END + dt.timedelta(days=7)
        assert state.orders[made.order_id].created_at == made.at
    truth = sim.truth.programs()["winback"]
    assert truth.treated == 200 and truth.messages == 200
    assert truth.incremental_orders == len(extra)
    assert truth.incremental_revenue == sum((p.value for p in extra), Money.zero("USD"))


def test_a_program_without_an_effect_brings_nobody_and_an_unknown_one_has_none() -> None:
    state = shop()
    sim = Simulation(state, seed=3, uplift={"review_request": Uplift(0.0)})
    for cid in buyers(state)[:100]:
        sim.receive(cid, "review_request")
        sim.receive(cid, "replenishment")  # not configured: no effect
    sim.advance(days=30)
    assert sim.truth.incremental() == []
    assert set(sim.truth.programs()) == {"review_request", "replenishment"}


def test_the_truth_does_not_depend_on_the_order_messages_arrive_in() -> None:
    def run(order: list[str]) -> list[tuple[str, bool, dt.datetime | None]]:
        sim = Simulation(shop(customers=150), seed=4, uplift={"winback": Uplift(0.3)})
        for cid in order:
            sim.receive(cid, "winback", key=f"winback:{cid}")
        sim.advance(days=20)
        return sorted((e.customer_id, e.responds, e.response_at) for e in sim.truth.exposures)

    ids = buyers(shop(customers=150))[:80]
    assert run(ids) == run(list(reversed(ids)))


def test_a_code_told_twice_is_still_used_once() -> None:
    state = shop()
    sim = Simulation(state, seed=5, uplift={"winback": Uplift(1.0, window_days=2)})
    cid = buyers(state)[0]
    sim.receive(cid, "winback", code="SS-00000000AA", percent=10, key="a")
    sim.receive(cid, "winback", code="SS-00000000AA", percent=10, key="b")
    sim.advance(days=3)
    coded = [p for p in sim.truth.purchases if p.code is not None]
    assert len(sim.truth.incremental("winback")) == 2 and len(coded) == 1


def test_a_message_delivered_twice_is_read_once() -> None:
    state = shop()
    sim = Simulation(state, seed=5, uplift={"winback": Uplift(1.0, window_days=2)})
    cid = buyers(state)[0]
    assert sim.receive(cid, "winback", key="<same@id>") is not None
    assert sim.receive(cid, "winback", key="<same@id>") is None
    sim.advance(days=3)
    assert len(sim.truth.incremental("winback")) == 1


def test_codes_cost_a_discount_on_orders_that_would_have_happened_anyway() -> None:
    state = shop(customers=400)
    sim = Simulation(state, seed=6, uplift={"winback": Uplift(0.0, window_days=60)})
    for n, cid in enumerate(buyers(state)):
        sim.receive(cid, "winback", code=f"SS-{n:010X}", percent=20)
    placed = sim.advance(days=60)
    coded = [p for p in placed if p.code is not None]
    assert coded and all(not p.incremental and p.program == "winback" for p in coded)
    for made in coded:
        order = state.orders[made.order_id]
        assert order.discount_codes == (made.code,)
        assert made.discount.amount == (made.value.amount * Decimal("0.2")).quantize(
            Decimal("0.01"), ROUND_HALF_UP
        )
        assert order.total_discounts == made.discount and order.total == made.value - made.discount
    # a code is single use: a customer's second order in the window pays in full
    assert len({p.code for p in coded}) == len(coded)
    truth = sim.truth.programs()["winback"]
    assert truth.discount_on_baseline == truth.discount_cost > Money.zero("USD")
    assert truth.incremental_orders == 0


def test_the_simulation_needs_a_shop_with_buyers() -> None:
    state = generate_shop(platform="shopify", shop="s", customers=10, orders=20, end=END)
    with pytest.raises(ValueError, match="buying="):
        Simulation(state)
    with pytest.raises(ValueError, match="probability"):
        Uplift(1.5)
    with pytest.raises(ValueError, match="forward"):
        Simulation(shop(customers=20)).advance(-1)
    driven = shop(customers=20)
    Simulation(driven)
    with pytest.raises(ValueError, match="already drives"):
        Simulation(driven)


# --------------------------------------------------------------------------- end to end


BRAND = Brand(name="Sim Shop", address="1 Main St, Springfield, IL 62701, USA")


def winback(sim: Simulation, shop_name: str, cid: str) -> WinBack:
    return WinBack(
        platform="shopify",
        shop=shop_name,
        customer_id=cid,
        due_at=sim.now,
        reason="we miss you",
        idempotency_key=f"winback:{shop_name}:{cid}:o1:stage2",
        stage=2,
        stage_name="offer",
        last_order_id="o1",
        trigger="rhythm",
        discount_percent=15,
    )


def test_emails_and_codes_shopsync_delivers_reach_the_customers(tmp_path: Path) -> None:
    """The whole path: the platform sink creates the codes on the emulated Shopify, the
    email sink sends the messages quoting them to the simulation's SMTP inbox."""
    with emulate("shopify", seed=7, customers=300, products=10, end=END, buying=CDNOW) as emu:
        state = emu.state
        store = Store(f"sqlite:///{tmp_path / 'store.db'}")
        store.upsert(list(state.customers.values()))
        subscribed = [
            cid
            for cid in buyers(state)
            if state.customers[cid].consent.email.state is ConsentState.SUBSCRIBED
        ][:20]
        other = next(c for c in buyers(state) if c not in subscribed)
        adapter = shopsync.connect("shopify", **emu.settings)
        with Inbox() as inbox:
            sim = Simulation(
                state,
                seed=7,
                inbox=inbox,
                emulator=emu.emulator,
                uplift={"winback": Uplift(1.0, 5)},
            )
            email = Email(
                inbox.host,
                inbox.port,
                sender="shop@sim.example",
                brand=BRAND,
                security="none",
                unsubscribe_url="https://sim.example/unsubscribe",
                unsubscribe_secret=SecretStr("unsubscribe-secret-0123456789"),
            )
            actions = [winback(sim, state.shop, cid) for cid in subscribed]
            report = apply(actions, store, [Platform(adapter), email], now=sim.now)
            email.close()
            assert report.delivered == 2 * len(subscribed), report
            # a code made on the platform that no email announces (the email not sent)
            alone = apply(
                [winback(sim, state.shop, other)], store, [Platform(adapter)], now=sim.now
            )
            assert alone.delivered == 1
            sim.advance(days=3)
            sim.advance(days=3)  # nothing is read twice
        adapter.close()
    mailed = [e for e in sim.truth.exposures if e.channel == "email"]
    assert sorted(e.customer_id for e in mailed) == sorted(subscribed)
    assert {e.program for e in mailed} == {"winback"}
    assert all(e.code is not None and e.code.startswith("SS-") for e in mailed)
    (coded,) = [e for e in sim.truth.exposures if e.channel == "code"]
    assert (coded.customer_id, coded.program) == (other, "discount_code")
    assert coded.code is not None and coded.code.startswith("SS-")
    extra = sim.truth.incremental("winback")
    assert len(extra) == len(subscribed)  # a true uplift of 1: every one of them came back
    with_code = [p for p in sim.truth.purchases if p.program == "winback" and p.code]
    assert len(with_code) == len(subscribed)  # each code used once, 15 % off
    for made in with_code:
        assert made.discount.amount == (made.value.amount * Decimal("0.15")).quantize(
            Decimal("0.01"), ROUND_HALF_UP
        )

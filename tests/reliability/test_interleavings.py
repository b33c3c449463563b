"""Every gap of a check or a read-then-write, with another writer committing in it (issue 16).

CI found a redemption whose check read two tables in two statements, while the first
redemption's follow-up sync, which took no lock, committed between them. These tests put a
concurrent writer in each gap of other such operations, one gap per round, on PostgreSQL
(READ COMMITTED: each statement sees what was committed before it started). The tests share
one store (one migration) and each round uses its own records, so they stay cheap. The end state
must be one that running the two operations one after the other, in either order, can give.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, text

from shopsync import loyalty
from shopsync.core.loyalty import LoyaltyError
from shopsync.models import (
    Consent,
    ConsentState,
    Customer,
    FinancialStatus,
    MarketingConsent,
    Money,
    OptInLevel,
    Order,
)
from shopsync.store import Store
from tests.reliability.interleave import Interleave

pytestmark = pytest.mark.postgres

P, S = "shopify", "acme.myshopify.com"
T0 = dt.datetime(2024, 1, 10, 12, tzinfo=dt.timezone.utc)
HOUR, DAY = dt.timedelta(hours=1), dt.timedelta(days=1)
SUBSCRIBED = MarketingConsent(
    state=ConsentState.SUBSCRIBED, opt_in_level=OptInLevel.SINGLE_OPT_IN, updated_at=T0
)


@pytest.fixture(scope="module")
def pg() -> Iterator[Store]:
    """One store for the module (one migration): every round names its own records."""
    base = os.environ.get("SHOPSYNC_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("SHOPSYNC_TEST_POSTGRES_URL is not set (see tests/conftest.py)")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    store = Store(f"{base}{'&' if '?' in base else '?'}options={quote(f'-csearch_path={schema}')}")
    try:
        yield store
    finally:
        store.close()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


_ROUNDS = itertools.count()


def customer(
    cid: str, at: dt.datetime, consent: MarketingConsent | None = None, shop: str = S
) -> Customer:
    return Customer(
        platform=P,
        shop=shop,
        id=cid,
        email=f"{cid}@example.com",
        created_at=T0 - DAY,
        updated_at=at,
        consent=Consent(email=consent or MarketingConsent()),
    )


def order(oid: str, cid: str, at: dt.datetime, shop: str = S) -> Order:
    def usd(amount: str) -> Money:
        return Money.of(amount, "USD")

    return Order(
        platform=P,
        shop=shop,
        id=oid,
        customer_id=cid,
        created_at=at,
        updated_at=at,
        paid_at=at,
        financial_status=FinancialStatus.PAID,
        currency="USD",
        subtotal=usd("100"),
        total_discounts=usd("0"),
        total_shipping=usd("5"),
        total_tax=usd("1"),
        total=usd("106"),
        total_refunded=usd("0"),
    )


def every_gap(
    store: Store,
    setup: Callable[[str], Any],
    operation: Callable[[str], Any],
    writer: Callable[[str], Any],
    check: Callable[[str, Interleave], Any],
) -> int:
    """Run ``operation`` once per gap between its statements (and after the last), with
    ``writer`` committing in that gap; ``check`` the end state of each round. Returns the
    number of rounds in which the writer had to wait for the operation's lock."""
    first = f"r{next(_ROUNDS)}"
    setup(first)
    with Interleave(store.engine, lambda: None, after=None) as counting:
        operation(first)
    waited = 0
    for k in range(counting.seen):
        name = f"r{next(_ROUNDS)}"
        setup(name)
        with Interleave(store.engine, partial(writer, name), after=k) as run:
            operation(name)
        check(name, run)
        waited += run.waited
    return waited


def test_a_consent_import_landing_inside_a_customer_upsert_is_kept(pg: Store) -> None:
    """A customer webhook carries no consent (Shopify, since 2025-01): the upsert keeps the
    stored one, read before it replaces the row. An unsubscribe imported from the ESP list
    (``shopsync consent import``) that commits in between must survive."""
    unsubscribed = MarketingConsent(state=ConsentState.UNSUBSCRIBED, updated_at=T0 + HOUR)
    waited = every_gap(
        pg,
        lambda cid: pg.upsert([customer(cid, T0, SUBSCRIBED)]),
        lambda cid: pg.upsert([customer(cid, T0 + 2 * HOUR)], same_stamp=False),
        lambda cid: pg.set_consent(P, S, cid, "email", unsubscribed, source="import"),
        lambda cid, run: _assert_state(pg, cid, ConsentState.UNSUBSCRIBED),
    )
    assert waited > 0  # some rounds had the writer wait for the operation's lock


def _assert_state(store: Store, cid: str, state: ConsentState) -> None:
    found = store.get(Customer, P, S, cid)
    assert found is not None and found.consent.email.state is state, cid


def test_a_deletion_landing_inside_an_upsert_of_an_older_version_keeps_it_deleted(
    pg: Store,
) -> None:
    """A sync's deletion pass (no page lock of its own) deletes a record while a webhook
    stores a version older than the deletion: in either order the record stays deleted."""
    waited = every_gap(
        pg,
        lambda cid: pg.upsert([customer(cid, T0)]),
        lambda cid: pg.upsert([customer(cid, T0 + HOUR)], same_stamp=False),
        lambda cid: pg.delete(Customer, P, S, cid, deleted_at=T0 + 2 * HOUR),
        lambda cid, run: _assert_absent(pg, cid),
    )
    assert waited > 0  # some rounds had the writer wait for the operation's lock


def test_an_erasure_landing_inside_an_upsert_keeps_the_customer_erased(pg: Store) -> None:
    """``Store.redact_customer`` (GDPR erasure, called by an operator's script) while a
    customer webhook or a sync page stores the customer: their personal data never comes
    back."""
    waited = every_gap(
        pg,
        lambda cid: pg.upsert([customer(cid, T0)]),
        lambda cid: pg.upsert([customer(cid, T0 + HOUR)], same_stamp=False),
        lambda cid: pg.redact_customer(P, S, cid),
        lambda cid, run: _assert_absent(pg, cid),
    )
    assert waited > 0  # some rounds had the writer wait for the operation's lock


def _assert_absent(store: Store, cid: str) -> None:
    assert store.get(Customer, P, S, cid) is None, cid


def test_a_redemption_landing_inside_a_full_loyalty_sync_never_spends_expired_points(
    pg: Store,
) -> None:
    """A full ``loyalty.update_ledger`` reads the inputs, derives, then writes. A redemption dated
    before the points' expiry that commits in between (an agent back-filling yesterday's
    reward, or a redemption started just before the expiry) must be seen by one of them:
    either the sync derives no expiry (the redemption was activity and spent the points) or
    the redemption sees the expiry and is refused. Never both (-500)."""
    expiry = T0 + dt.timedelta(days=366)  # 12 months after the order (2024 is a leap year)
    now = dt.datetime.now(dt.timezone.utc)
    shop = "{}.myshopify.com".format  # a shop per round: each full sync reads one customer

    def setup(cid: str) -> None:
        pg.upsert([customer(cid, T0, shop=shop(cid)), order(f"o-{cid}", cid, T0, shop(cid))])

    def redeem(cid: str) -> str:
        try:
            loyalty.redeem(pg, (P, shop(cid), cid), 500, as_of=expiry - DAY, key=f"r-{cid}")
        except LoyaltyError:
            return "refused"
        return "redeemed"

    def check(cid: str, run: Interleave) -> None:
        assert run.result in ("redeemed", "refused")
        assert loyalty.balance(pg, (P, shop(cid), cid)).approved == 0, (cid, run.result)

    sync = lambda cid: loyalty.update_ledger(pg, P, shop(cid), as_of=now)  # noqa: E731
    assert every_gap(pg, setup, sync, redeem, check) > 0


@pytest.mark.parametrize("late", ["finish", "heartbeat"])
def test_a_late_workers_finish_or_heartbeat_inside_a_takeover_claim_is_not_overwritten(
    pg: Store, late: str
) -> None:
    """A worker whose job's lock just lapsed finishes it (or renews it) while another worker's
    claim takes the job over as abandoned. The claim reads the job, then writes it: a finish
    committed in between must not be turned back into a run (the job ran twice, recorded
    done by the first), nor a renewal be taken over after the first worker was told it still
    holds the job."""
    from shopsync.store import jobs

    def setup(name: str) -> None:
        jobs.enqueue(pg, "sync", name, "{}", f"shop:{name}")
        held[name] = jobs.claim(pg, "first", ttl=0)  # its lock lapses at once

    def writer(name: str) -> bool:
        job = held[name]
        assert job is not None
        return jobs.finish(pg, job) if late == "finish" else jobs.heartbeat(pg, job, 60)

    def check(name: str, run: Interleave) -> None:
        taken = taken_over.pop(name)
        assert run.result is not None
        assert not (run.result and taken is not None), (name, late, taken)
        assert run.result or taken is not None, name  # one of them holds it

    held: dict[str, Any] = {}
    taken_over: dict[str, Any] = {}

    def claim(name: str) -> None:
        taken_over[name] = jobs.claim(pg, "second", ttl=60)
        if taken_over[name] is not None:
            assert taken_over[name].shop == name
            jobs.finish(pg, taken_over[name])

    every_gap(pg, setup, claim, writer, check)


def test_one_webhook_delivered_twice_at_once_is_applied_once(pg: Store, tmp_path: Path) -> None:
    """Platforms retry a delivery that timed out while the first attempt is still running:
    the same delivery id, twice at once. Whatever the gap, one applies, one is a duplicate."""
    from shopsync import webhooks
    from tests.fakes import installed
    from tests.test_webhooks import SECRET, SHOP, TOY, delivery

    def handle(name: str) -> str:
        doc = {"topic": "orders/create", "shop": SHOP, "orders": [toy_order(name)]}
        headers, body = delivery(doc, f"d-{name}")
        return webhooks.handle("toy", headers, body, pg, SECRET, shops={SHOP}).status

    def toy_order(name: str) -> dict[str, Any]:
        return (
            order(name, "7", T0, shop=SHOP)
            .model_copy(update={"platform": "toy"})
            .model_dump(mode="json")
        )

    def applied_once(name: str, run: Interleave) -> None:
        assert sorted([outcome.pop(name), run.result]) == ["applied", "duplicate"], name

    outcome: dict[str, str] = {}
    entry = {"shopsync.adapters": {"toy": "shopsync_toy:ToyAdapter"}}
    with installed(tmp_path, "shopsync_toy", TOY, entry):
        waited = every_gap(
            pg,
            lambda name: None,
            lambda name: outcome.__setitem__(name, handle(name)),
            handle,
            applied_once,
        )
    assert waited > 0


def test_an_unsubscribe_landing_inside_a_delivery_leaves_a_true_record(pg: Store) -> None:
    """The one-click unsubscribe (no apply lease) cancels the customer's pending marketing
    rows while an apply run delivers one of them. What the outbox records must be what
    happened: a message the sink sent is ``done``, one it did not send is ``cancelled``.
    (A message already on its way when the click lands cannot be called back.)"""
    from shopsync import outbox
    from tests.apply.helpers import NOW, nudge
    from tests.apply.helpers import customer as subscribed
    from tests.apply.test_outbox import Recorder

    sink = Recorder()

    def check(name: str, run: Interleave) -> None:
        [row] = [r for r in outbox.list_outbox(pg) if r.customer_id == name]
        sent = row.idempotency_key in sink.delivered
        assert (row.status, sent) in (("done", True), ("cancelled", False)), (name, row)

    waited = every_gap(
        pg,
        lambda name: pg.upsert([subscribed(name)]),
        lambda name: outbox.apply([nudge(name)], pg, [sink], now=NOW),
        lambda name: outbox.record_unsubscribe(pg, "shopify", "acme.myshopify.com", name, now=NOW),
        check,
    )
    assert waited > 0


def test_two_runs_taking_over_a_dead_runs_lease_at_once_get_it_once(pg: Store) -> None:
    """The apply lease of a run that died on this machine is taken over at once (no ttl
    wait): its holder is read, found dead, its expiry cleared, then the lease is taken. A
    second run doing the same in any gap of the first: exactly one of them holds it."""
    import socket
    import subprocess
    import sys

    from shopsync.store._engine import LeaseHeld, acquire

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead = f"{socket.gethostname()}:{gone.pid}:00000000"

    def take(name: str, who: str) -> str:
        try:
            acquire(pg.engine, f"apply-{name}", holder=who, ttl=300)
        except LeaseHeld:
            return "held"
        return who

    def check(name: str, run: Interleave) -> None:
        first = outcome.pop(name)
        assert sorted([first, run.result]) in (["first", "held"], ["held", "second"]), name
        [(holder,)] = [(h,) for n, h in leases_held(pg) if n == f"apply-{name}"]
        assert holder == ("first" if first == "first" else "second"), name

    from shopsync.store.jobs import leases_held

    outcome: dict[str, str] = {}
    every_gap(
        pg,
        lambda name: acquire(pg.engine, f"apply-{name}", holder=dead, ttl=300),
        lambda name: outcome.__setitem__(name, take(name, "first")),
        lambda name: take(name, "second"),
        check,
    )


def test_an_unsubscribe_landing_inside_a_double_opt_in_confirmation_stands(pg: Store) -> None:
    """A customer confirms a subscription link, then clicks unsubscribe in a newer email; the
    two requests are served at once. The confirmation checks that no unsubscribe came after
    its link was issued, then records the subscription and lifts the older suppression: an
    unsubscribe committed in between must not be lifted with it."""
    from shopsync import consent, outbox

    issued = T0 - HOUR

    def confirm(name: str) -> str:
        token = consent.subscribe_token("s3cret-of-16-bytes+", P, S, name, issued_at=issued)
        app = consent.subscribe_app(pg, "s3cret-of-16-bytes+", clock=lambda: T0)
        status: list[str] = []
        environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/subscribe", "QUERY_STRING": ""}
        environ["QUERY_STRING"] = f"token={token}"
        b"".join(app(environ, lambda s, headers: status.append(s)))
        return status[0]

    def unsubscribe(name: str) -> int:
        return outbox.record_unsubscribe(pg, P, S, name, now=T0 - HOUR / 2)

    def check(name: str, run: Interleave) -> None:
        assert pg.suppressed_at(P, S, name) is not None, name

    every_gap(pg, lambda name: pg.upsert([customer(name, T0 - DAY)]), confirm, unsubscribe, check)


def test_a_newer_consent_landing_inside_a_consent_import_is_not_overwritten(
    pg: Store, tmp_path: Path
) -> None:
    """An imported list says "subscribed" as of 1 pm; a sync page brings the platform's
    "unsubscribed" as of 2 pm while the import runs. The import checks the stored consent's
    date, then writes: the newer consent committed in between must stand."""
    from shopsync import consent

    unsubscribed = MarketingConsent(state=ConsentState.UNSUBSCRIBED, updated_at=T0 + 2 * HOUR)

    def run_import(name: str) -> None:
        path = tmp_path / f"{name}.csv"
        stamp = (T0 + HOUR).isoformat()
        path.write_text(f"email,state,date\n{name}@example.com,subscribed,{stamp}\n")
        consent.import_consent(pg, P, S, path)

    every_gap(
        pg,
        lambda name: pg.upsert([customer(name, T0)]),
        run_import,
        lambda name: pg.upsert([customer(name, T0 + 3 * HOUR, unsubscribed)]),
        lambda name, run: _assert_state(pg, name, ConsentState.UNSUBSCRIBED),
    )


def test_an_erasure_landing_inside_a_loyalty_sync_leaves_no_ledger_behind(pg: Store) -> None:
    """``customers/redact`` erases the customer's loyalty entries while a loyalty sync that
    read the customer before derives their entries: none may be written after the erasure."""
    shop = "{}.myshopify.com".format
    now = dt.datetime.now(dt.timezone.utc)

    def check(cid: str, run: Interleave) -> None:
        left = [e for e in loyalty.ledger_entries(pg, P, shop(cid)) if e.customer_id == cid]
        assert left == [], cid

    waited = every_gap(
        pg,
        lambda cid: pg.upsert(
            [customer(cid, T0, shop=shop(cid)), order(f"o-{cid}", cid, T0, shop(cid))]
        ),
        lambda cid: loyalty.update_ledger(pg, P, shop(cid), as_of=now),
        lambda cid: pg.redact_customer(P, shop(cid), cid),
        check,
    )
    assert waited > 0


def test_a_second_apply_starting_in_any_gap_of_a_first_sends_each_message_once(
    pg: Store,
) -> None:
    """Two apply runs of one store at once (cron and a worker): the second starts between
    any two statements of the first. Each message is sent once, whoever sends it."""
    from shopsync import outbox
    from shopsync.store import LeaseHeld
    from tests.apply.helpers import NOW, nudge
    from tests.apply.helpers import customer as subscribed
    from tests.apply.test_outbox import Recorder

    sink = Recorder()

    def second(name: str) -> str:
        try:
            outbox.apply([nudge(name, 1), nudge(name, 2)], pg, [sink], now=NOW, lease_wait=0)
        except LeaseHeld:
            return "held"
        return "ran"

    def check(name: str, run: Interleave) -> None:
        keys = [k for k in sink.delivered if f":{name}:" in k]
        assert sorted(keys) == sorted(set(keys)) and len(keys) == 2, (name, keys)

    every_gap(
        pg,
        lambda name: pg.upsert([subscribed(name)]),
        lambda name: outbox.apply([nudge(name, 1), nudge(name, 2)], pg, [sink], now=NOW),
        second,
        check,
    )


def test_an_erasure_landing_inside_an_incremental_settle_leaves_no_moment_behind(
    pg: Store,
) -> None:
    """An incremental plan settles (writes each planned customer's loyalty and program
    moments) while ``customers/redact`` erases one of them: the erasure deletes the moments
    and a moment may tell a birthday, so none may be written after it (issue 19)."""
    from shopsync.store import incremental

    shop = "{}.myshopify.com".format
    at = T0 + DAY
    micros = int(at.timestamp() * 1_000_000)
    later = micros + 30 * 86_400_000_000

    def settle(cid: str) -> None:
        incremental.settle(
            pg, pg.shop_id(P, shop(cid)), [], {cid: later}, micros, "s", {cid: later}, "p"
        )

    def check(cid: str, run: Interleave) -> None:
        shop_id = pg.shop_id(P, shop(cid))
        assert cid not in incremental.not_due(pg, shop_id, micros, "s"), cid
        assert cid not in incremental.program_not_due(pg, shop_id, micros, "p"), cid

    waited = every_gap(
        pg,
        lambda cid: pg.upsert([customer(cid, T0, shop=shop(cid))]),
        settle,
        lambda cid: pg.redact_customer(P, shop(cid), cid),
        check,
    )
    assert waited > 0  # the erasure waited for the settle's lock in some rounds


def test_a_removal_of_the_shop_landing_inside_an_incremental_settle_leaves_no_moment_behind(
    pg: Store,
) -> None:
    """``shop/redact`` (or an uninstall) removes every row of the shop while a settle writes
    its customers' moments: none may outlive the shop."""
    from shopsync.store import incremental

    shop = "{}.myshopify.com".format
    micros = int((T0 + DAY).timestamp() * 1_000_000)
    later = micros + 30 * 86_400_000_000
    ids: dict[str, int] = {}

    def settle(cid: str) -> None:
        ids[cid] = pg.shop_id(P, shop(cid))
        incremental.settle(pg, ids[cid], [], {cid: later}, micros, "s", {cid: later}, "p")

    def check(cid: str, run: Interleave) -> None:
        assert incremental.not_due(pg, ids[cid], micros, "s") == set(), cid
        assert incremental.program_not_due(pg, ids[cid], micros, "p") == set(), cid

    waited = every_gap(
        pg,
        lambda cid: pg.upsert([customer(cid, T0, shop=shop(cid))]),
        settle,
        lambda cid: pg.remove_shop(P, shop(cid)),
        check,
    )
    assert waited > 0


def test_a_sync_write_landing_inside_an_incremental_settle_does_not_wait_for_it(
    pg: Store,
) -> None:
    """A settle writes a moment for each planned customer (100,000 take seconds): the shop's
    sync pages and webhooks must not wait for it, only an erasure or a removal does."""
    from shopsync.store import incremental

    shop = "{}.myshopify.com".format
    micros = int((T0 + DAY).timestamp() * 1_000_000)
    later = micros + 30 * 86_400_000_000

    def settle(cid: str) -> None:
        sid = pg.shop_id(P, shop(cid))
        incremental.settle(pg, sid, [], {cid: later}, micros, "s", {cid: later}, "p")

    waited = every_gap(
        pg,
        lambda cid: pg.upsert([customer(cid, T0, shop=shop(cid))]),
        settle,
        lambda cid: pg.upsert([customer(cid, T0 + HOUR, shop=shop(cid))], same_stamp=False),
        lambda cid, run: None,
    )
    assert waited == 0

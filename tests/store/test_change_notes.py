"""Every write of the store notes the customers it changed, in the write's own transaction
(issue 19, item 1): orders, refunds, consent, tags, deletions, loyalty inputs. Both engines."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from shopsync.adapter import CustomerChange
from shopsync.errors import StoreError
from shopsync.models import ConsentState, MarketingConsent, Refund
from shopsync.store import Store, changes, ledger
from shopsync.sync import sync
from tests.core.retention_helpers import DAY, T0, P, S, customer, order
from tests.test_sync import ListAdapter


def noted(store: Store) -> dict[str, int]:
    """customer id -> seq of the shop's notes."""
    return {c.customer_id: c.seq for c in changes.changed(store) if (c.platform, c.shop) == (P, S)}


def clear(store: Store) -> None:
    changes.clear_changes(store, changes.changed(store, limit=10_000))


def _note_c1(store: Store, at: dt.datetime) -> None:
    """c1 changed at ``at``, noted in a write of its own."""
    with store.transaction() as tx:
        changes.mark_changed(store, tx, P, S, ["c1"], at)


def test_upserts_note_exactly_the_customers_they_changed(store: Store) -> None:
    store.upsert([customer("c1"), customer("c2"), order("o1", "c1", T0)])
    assert set(noted(store)) == {"c1", "c2"}
    clear(store)
    # the same versions again (a sync's overlap re-read): nothing changed, nothing noted
    store.upsert([customer("c1"), customer("c2"), order("o1", "c1", T0)])
    assert noted(store) == {}
    # a refund arrives with a newer version of the order: its owner changed
    refunded = order("o1", "c1", T0, refund=(T0 + 3 * DAY, "5"))
    store.upsert([refunded])
    assert set(noted(store)) == {"c1"}
    clear(store)
    # the platform moves the order to another customer: both owners changed
    moved = refunded.model_copy(update={"customer_id": "c2", "updated_at": T0 + 5 * DAY})
    store.upsert([moved])
    assert set(noted(store)) == {"c1", "c2"}
    clear(store)
    # tags (a newer customer version)
    tagged = customer("c2").model_copy(update={"tags": ("vip",), "updated_at": T0})
    store.upsert([tagged])
    assert set(noted(store)) == {"c2"}
    # an older version is stale: not written, not noted
    clear(store)
    store.upsert([customer("c2")])
    assert noted(store) == {}


def test_a_second_change_moves_the_seq_so_a_worker_keeps_the_note(store: Store) -> None:
    store.upsert([customer("c1")])
    first = changes.changed(store)
    store.upsert([order("o1", "c1", T0)])
    assert noted(store)["c1"] > first[0].seq
    assert changes.clear_changes(store, first) == 0  # changed again since it was read
    assert set(noted(store)) == {"c1"}
    again = changes.changed(store)
    assert changes.clear_changes(store, again) == 1
    assert changes.clear_changes(store, again) == 0 and noted(store) == {}  # handled once


def test_a_worker_keeps_a_note_written_again_after_a_settle_took_the_one_it_read(
    store: Store,
) -> None:
    """A worker reads c1's note; an incremental plan's settle removes it; c1 changes again (a
    new note, at seq 1 again): the worker, which planned c1 before that change, must not
    take the new note off the workers' list."""
    from shopsync.store import incremental as marks

    store.upsert([customer("c1")])
    read = changes.changed(store)
    sid = store.shop_id(P, S)
    assert marks.settle(store, sid, marks.pending_notes(store, sid, P, S), {}, 0, "s") == 1
    store.upsert([order("o1", "c1", T0)])
    assert changes.clear_changes(store, read) == 0
    assert set(noted(store)) == {"c1"}


def test_a_note_written_again_in_the_same_microsecond_is_not_the_one_read(
    store: Store,
) -> None:
    """Plan A and a worker read c1's note; plan B's settle removes it; a new change notes c1
    again at the same moment: A's settle and the worker's clear must leave the new note (it
    is a change neither read). A store-wide note sequence tells the two notes apart."""
    from shopsync.store import incremental as marks

    sid = store.shop_id(P, S)

    _note_c1(store, T0)
    read, listed = marks.pending_notes(store, sid, P, S), changes.changed(store)
    assert marks.settle(store, sid, marks.pending_notes(store, sid, P, S), {}, 0, "s") == 1
    _note_c1(store, T0)
    assert marks.settle(store, sid, read, {}, 0, "s") == 0
    assert changes.clear_changes(store, listed) == 0
    assert set(noted(store)) == {"c1"}


def test_a_note_of_a_shop_removed_and_created_again_is_not_the_one_read(store: Store) -> None:
    """A worker and a plan read c1's note; the shop is removed (an uninstall) and installed
    again under the same name, and c1 changes at the same moment: the worker (which names the
    shop, not its id) and the plan must leave the new shop's note, a change neither read."""
    from shopsync.store import incremental as marks

    _note_c1(store, T0)
    sid = store.shop_id(P, S)
    read, listed = marks.pending_notes(store, sid, P, S), changes.changed(store)
    store.remove_shop(P, S)
    _note_c1(store, T0)
    assert changes.clear_changes(store, listed) == 0
    assert marks.settle(store, sid, read, {}, 0, "s") == 0
    assert set(noted(store)) == {"c1"}


def test_a_worker_leaves_a_note_an_older_process_wrote_at_a_value_the_sequence_hands_out(
    store: Store,
) -> None:
    """An older process left running after the upgrade (docs/store.md) still writes a note's
    ``seq`` as the stored one + 1: a value the store's sequence hands out next. A worker that
    read that note, clearing after this version noted the customer again (at another moment)
    with that same value, must leave the new change: the moment it read tells them apart."""
    from sqlalchemy import text

    _note_c1(store, T0)
    with store.transaction() as tx:  # revision 0025's note statement, for the older process
        tx.execute(text("UPDATE changed_customers SET seq = seq + 1, changed_at = changed_at + 1"))
    listed = changes.changed(store)
    _note_c1(store, T0 + DAY)
    assert [c.seq for c in changes.changed(store)] == [c.seq for c in listed]  # the same value
    assert changes.clear_changes(store, listed) == 0
    assert set(noted(store)) == {"c1"}


def test_a_plan_leaves_a_note_an_older_process_wrote_at_a_value_the_sequence_hands_out(
    store: Store,
) -> None:
    """The same older process, and an incremental plan that read its note: this version
    notes the customer again (at another moment) with that same value; the plan's settle must
    leave the new change, told apart by the moment read (handled or not)."""
    from sqlalchemy import text

    from shopsync.store import incremental as marks

    _note_c1(store, T0)
    with store.transaction() as tx:  # revision 0025's note statement, for the older process
        tx.execute(text("UPDATE changed_customers SET seq = seq + 1, changed_at = changed_at + 1"))
    sid = store.shop_id(P, S)
    read = marks.pending_notes(store, sid, P, S)
    changes.clear_changes(store, changes.changed(store))  # a worker handled it meanwhile
    _note_c1(store, T0 + DAY)
    assert [c.seq for c in marks.pending_notes(store, sid, P, S)] == [c.seq for c in read]
    assert marks.settle(store, sid, read, {}, 0, "s") == 0
    assert set(noted(store)) == {"c1"}


def test_a_change_dated_before_1970_is_listed_for_the_workers(store: Store) -> None:
    """A handled note's moment is stored negative: a change dated before the epoch (an
    ``apply`` given such a ``now`` notes its deliveries at it) must not look handled."""
    store.upsert([customer("c1")])
    clear(store)  # c1: a handled note
    with store.transaction() as conn:
        early = dt.datetime(1969, 12, 31, tzinfo=dt.timezone.utc)
        changes.mark_changed(store, conn, P, S, ["c1", "c2"], early)
    assert set(noted(store)) == {"c1", "c2"}
    assert changes.clear_changes(store, changes.changed(store)) == 2 and noted(store) == {}


def test_consent_deletions_partial_changes_and_loyalty_inputs_are_noted(store: Store) -> None:
    store.upsert([customer("c1"), customer("c2"), customer("c3"), order("o1", "c1", T0)])
    clear(store)
    store.set_consent(
        P,
        S,
        "c2",
        "email",
        MarketingConsent(state=ConsentState.UNSUBSCRIBED),
        source="import",
        now=T0 + DAY,
    )
    assert set(noted(store)) == {"c2"}
    clear(store)
    assert store.delete(type(order("x", None, T0)), P, S, "o1", deleted_at=T0 + DAY)
    assert set(noted(store)) == {"c1"}  # the deleted order's owner
    clear(store)
    assert store.delete(type(customer("x")), P, S, "c3", deleted_at=T0 + DAY)
    assert set(noted(store)) == {"c3"}
    clear(store)
    assert not store.delete(type(customer("x")), P, S, "nobody", deleted_at=T0 + DAY)
    assert noted(store) == {}
    store.apply_customer_changes(P, S, [CustomerChange(customer_id="c1", tags_added=("gold",))])
    assert set(noted(store)) == {"c1"}
    clear(store)
    shop_id = store.shop_id(P, S)
    with store.transaction() as conn:
        ledger.add_inputs(
            conn,
            [
                {
                    "shop_id": shop_id,
                    "key": "adjust:c2:1",
                    "kind": "adjust",
                    "customer_id": "c2",
                    "occurred_at": 1,
                    "data": {"points": 5, "reason": "x"},
                }
            ],
        )
    assert set(noted(store)) == {"c2"}


def test_the_note_commits_or_rolls_back_with_the_write(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction() as tx:
        store.upsert([customer("c1"), order("o1", "c1", T0)], conn=tx)
        assert set(noted(store)) <= {"c1"}  # (SQLite may show it to no other reader yet)
        raise RuntimeError("crash between the write and the commit")
    assert noted(store) == {} and store.count(type(customer("x")), P, S) == 0


def test_a_note_that_cannot_be_written_undoes_the_write(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> int:
        raise RuntimeError("the disk filled between the write and its note")

    monkeypatch.setattr(changes, "note", broken)
    with pytest.raises((RuntimeError, StoreError)):
        store.upsert([customer("c1"), order("o1", "c1", T0)])
    monkeypatch.undo()
    assert store.count(type(customer("x")), P, S) == 0
    assert noted(store) == {}


def test_sync_notes_each_page_with_its_checkpoint(store: Store) -> None:
    """A sync killed after its first page keeps that page's notes and its checkpoint, and
    nothing of the next page: the re-run reads the rest and notes it."""
    shop = ListAdapter(page_size=2)
    shop.platform, shop.shop = P, S
    for n in range(5):
        o = order(f"o{n}", f"c{n}", T0 + n * dt.timedelta(minutes=1))
        shop.orders[o.id] = o
    shop.fail_after_pages = 1
    with pytest.raises(Exception, match="revoked"):
        sync(shop, store, resources=["orders"])
    assert set(noted(store)) == {"c0", "c1"}
    shop.fail_after_pages = None
    sync(shop, store, resources=["orders"])
    assert set(noted(store)) == {f"c{n}" for n in range(5)}
    clear(store)
    # a refund on the platform: the next sync notes its owner only
    o = shop.orders["o3"]
    shop.orders["o3"] = o.model_copy(
        update={
            "updated_at": T0 + 9 * DAY,
            "refunds": (Refund(id="r", created_at=T0 + 9 * DAY, amount=o.total),),
        }
    )
    sync(shop, store, resources=["orders"])
    assert set(noted(store)) == {"c3"}


def test_an_unsubscription_and_its_lifting_are_noted(store: Store) -> None:
    from shopsync.outbox import record_unsubscribe

    store.upsert([customer("c1")])
    clear(store)
    record_unsubscribe(store, P, S, "c1", now=T0)
    assert set(noted(store)) == {"c1"}
    clear(store)
    # the consent was stored already (nothing new) but the suppression is lifted
    assert not store.set_consent(
        P,
        S,
        "c1",
        "email",
        MarketingConsent(state=ConsentState.SUBSCRIBED),
        source="double opt-in",
        now=T0 + DAY,
        lift_suppression=True,
    )
    assert store.suppressed_at(P, S, "c1") is None
    assert set(noted(store)) == {"c1"}


def test_a_customer_noted_twice_in_one_transaction_is_written_once(store: Store) -> None:
    """A webhook delivery's upsert notes what changed, then the delivery notes every customer
    it names: one change, one value of the store's note sequence (a worker compares it)."""
    with store.transaction() as tx:
        store.upsert([customer("c1")], conn=tx)
        changes.mark_changed(store, tx, P, S, ["c1", "c2"], T0)
    assert noted(store) == {"c1": 1, "c2": 2}  # one sequence for every note of the store
    with store.transaction() as tx:
        changes.mark_changed(store, tx, P, S, ["c1"], T0)
    assert noted(store) == {"c1": 3, "c2": 2}

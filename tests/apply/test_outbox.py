"""The outbox on its own: recorded before delivery, done once, retried, parked, cancelled."""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

import pytest
from sqlalchemy import delete, insert, update

import shopsync
from shopsync.core.actions import Action
from shopsync.errors import ConfigurationError, TransportError
from shopsync.outbox import Backoff, apply, list_outbox, retry_parked
from shopsync.sinks import Cancelled, DeliveryContext, DeliveryError
from shopsync.store import Store
from tests.apply.helpers import NOW, customer, nudge

SHOP = "acme.myshopify.com"


class Recorder:
    """A sink that records deliveries and fails as told."""

    guarantee: ClassVar[str] = "at_least_once"
    stage: ClassVar[int] = 1
    contacts_customer: ClassVar[bool] = True

    def __init__(self, name: str = "recorder", stage: int = 1) -> None:
        self.name = name
        self.stage = stage  # type: ignore[misc]
        self.delivered: list[str] = []
        self.fail: dict[str, list[BaseException]] = {}

    def accepts(self, action: Action) -> bool:
        return True

    def render(self, action: Action, context: DeliveryContext) -> dict[str, Any]:
        return {"to": context.customer.email if context.customer else None}

    def deliver(self, action: Action, context: DeliveryContext) -> dict[str, Any]:
        queued = self.fail.get(action.idempotency_key)
        if queued:
            raise queued.pop(0)
        self.delivered.append(action.idempotency_key)
        return {"n": len(self.delivered)}

    def close(self) -> None:
        pass


@pytest.fixture
def shop_store(store: Store) -> Store:
    store.upsert([customer(str(i)) for i in range(1, 6)])
    store.upsert([customer("9", consent="unsubscribed")])
    return store


def test_each_action_is_delivered_once_and_marked_done(shop_store: Store) -> None:
    sink = Recorder()
    actions = [nudge("1"), nudge("2"), nudge("1")]  # the third repeats the first key
    report = apply(actions, shop_store, [sink], now=NOW)
    assert (report.recorded, report.delivered) == (2, 2)
    assert sink.delivered == ["nudge:acme.myshopify.com:1:1", "nudge:acme.myshopify.com:2:1"]
    rows = list_outbox(shop_store)
    assert [(r.status, r.result, r.attempts) for r in rows] == [
        ("done", {"n": 1}, 1),
        ("done", {"n": 2}, 1),
    ]
    again = apply(actions, shop_store, [sink], now=NOW + dt.timedelta(days=1))
    assert (again.recorded, again.delivered) == (0, 0)
    assert len(sink.delivered) == 2


def test_not_due_actions_wait_and_pending_rows_are_delivered_without_a_plan(
    shop_store: Store,
) -> None:
    sink = Recorder()
    later = nudge("3", due_at=NOW + dt.timedelta(days=2))
    report = apply([later], shop_store, [sink], now=NOW)
    assert (report.recorded, report.delivered, report.waiting) == (1, 0, 1)
    report = apply(None, shop_store, [sink], now=NOW + dt.timedelta(days=3))
    assert report.delivered == 1 and sink.delivered == [later.idempotency_key]


def test_retryable_failures_back_off_then_park_with_the_reason(shop_store: Store) -> None:
    sink = Recorder()
    action = nudge("1")
    sink.fail[action.idempotency_key] = [TransportError("timed out: POST x")] * 3
    backoff = Backoff(initial=60, factor=2, max_attempts=3)
    first = apply([action], shop_store, [sink], now=NOW, backoff=backoff)
    assert first.failed == 1
    (row,) = list_outbox(shop_store)
    assert row.status == "pending" and row.attempts == 1
    assert row.next_attempt_at == NOW + dt.timedelta(seconds=60)
    assert "timed out" in (row.reason or "")
    # inside the backoff nothing is attempted
    assert apply(None, shop_store, [sink], now=NOW, backoff=backoff).waiting == 1
    apply(None, shop_store, [sink], now=NOW + dt.timedelta(seconds=61), backoff=backoff)
    (row,) = list_outbox(shop_store)
    assert row.next_attempt_at == NOW + dt.timedelta(seconds=61 + 120)
    report = apply(None, shop_store, [sink], now=NOW + dt.timedelta(hours=1), backoff=backoff)
    assert report.parked == 1
    (row,) = list_outbox(shop_store, status="parked")
    assert row.reason == "gave up after 3 attempts: timed out: POST x"
    assert sink.delivered == []
    # queued again by hand, it goes out
    assert retry_parked(shop_store, now=NOW + dt.timedelta(hours=2)) == 1
    apply(None, shop_store, [sink], now=NOW + dt.timedelta(hours=2))
    assert sink.delivered == [action.idempotency_key]
    assert list_outbox(shop_store, status="done")[0].attempts == 1


def test_a_permanent_failure_parks_at_once_and_the_rest_is_delivered(shop_store: Store) -> None:
    sink = Recorder()
    bad, good = nudge("1"), nudge("2")
    sink.fail[bad.idempotency_key] = [DeliveryError("receiver said 422", retryable=False)]
    sink.fail[good.idempotency_key] = [RuntimeError("a bug in the sink")]
    report = apply([bad, good, nudge("3")], shop_store, [sink], now=NOW)
    assert (report.parked, report.failed, report.delivered) == (1, 1, 1)
    parked = list_outbox(shop_store, status="parked")
    assert [(p.customer_id, p.reason) for p in parked] == [("1", "receiver said 422")]
    pending = list_outbox(shop_store, status="pending")
    assert pending[0].reason == "RuntimeError: a bug in the sink"


def test_marketing_without_consent_or_customer_is_cancelled(shop_store: Store) -> None:
    sink = Recorder()
    report = apply([nudge("9"), nudge("404"), nudge("1")], shop_store, [sink], now=NOW)
    assert (report.cancelled, report.delivered) == (2, 1)
    reasons = {r.customer_id: r.reason for r in list_outbox(shop_store, status="cancelled")}
    assert reasons == {
        "9": "no marketing consent (email consent is unsubscribed)",
        "404": "customer 404 is no longer in the store (deleted or redacted)",
    }


def test_soft_opt_in_policy_allows_not_subscribed(shop_store: Store) -> None:
    shop_store.upsert([customer("7", consent="not_subscribed")])
    policy = shopsync.core.Policy.model_validate({"consent": {"allow_soft_opt_in": True}})
    report = apply([nudge("7")], shop_store, [Recorder()], now=NOW, policy=policy)
    assert report.delivered == 1


def test_consent_withdrawn_after_planning_cancels_the_pending_row(shop_store: Store) -> None:
    sink = Recorder()
    action = nudge("2", due_at=NOW + dt.timedelta(hours=5))
    apply([action], shop_store, [sink], now=NOW)
    later = NOW + dt.timedelta(days=1)
    shop_store.upsert([customer("2", consent="unsubscribed", updated_at=later)])
    report = apply([action], shop_store, [sink], now=later)
    assert report.cancelled == 1 and sink.delivered == []


def test_a_sink_cancelling_is_recorded(shop_store: Store) -> None:
    sink = Recorder()
    action = nudge("1")
    sink.fail[action.idempotency_key] = [Cancelled("discount code X expired")]
    apply([action], shop_store, [sink], now=NOW)
    (row,) = list_outbox(shop_store)
    assert (row.status, row.reason) == ("cancelled", "discount code X expired")


def test_later_stages_wait_for_the_platform_write_and_follow_its_fate(shop_store: Store) -> None:
    platform, mail = Recorder("platform", stage=0), Recorder("mail")
    ok, refused = nudge("1"), nudge("2")
    platform.fail[refused.idempotency_key] = [DeliveryError("code refused", retryable=False)]
    platform.fail[ok.idempotency_key] = [TransportError("dropped")]
    apply([ok, refused], shop_store, [platform, mail], now=NOW)
    by = {(r.sink, r.customer_id): r for r in list_outbox(shop_store)}
    assert by[("mail", "1")].status == "pending"  # waits for the platform row
    assert by[("mail", "2")].status == "pending"  # waits too: the park may be lifted
    assert by[("platform", "2")].status == "parked"
    assert mail.delivered == []
    apply(None, shop_store, [platform, mail], now=NOW + dt.timedelta(hours=1))
    assert mail.delivered == [ok.idempotency_key]
    assert retry_parked(shop_store, [refused.idempotency_key], now=NOW) == 1
    apply(None, shop_store, [platform, mail], now=NOW + dt.timedelta(hours=2))
    assert mail.delivered == [ok.idempotency_key, refused.idempotency_key]


def test_dry_run_writes_and_sends_nothing(shop_store: Store) -> None:
    sink = Recorder()
    apply([nudge("1")], shop_store, [sink], now=NOW)
    report = apply(
        [nudge("1"), nudge("2"), nudge("9"), nudge("3", due_at=NOW + dt.timedelta(days=1))],
        shop_store,
        [sink],
        now=NOW,
        dry_run=True,
    )
    assert [(d.customer_id, d.status) for d in report.deliveries] == [
        ("1", "done"),
        ("2", "send"),
        ("9", "cancel"),
        ("3", "waiting"),
    ]
    assert report.deliveries[1].payload == {"to": "c2@example.com"}
    assert len(list_outbox(shop_store)) == 1 and sink.delivered == [nudge("1").idempotency_key]
    assert "1 would be sent" in str(report)


def test_list_outbox_filters_and_rejects_unknown_statuses(shop_store: Store) -> None:
    apply([nudge("1"), nudge("9")], shop_store, [Recorder()], now=NOW)
    assert [r.customer_id for r in list_outbox(shop_store, status="done")] == ["1"]
    assert len(list_outbox(shop_store, status=["done", "cancelled"], shop=SHOP)) == 2
    assert list_outbox(shop_store, kind="other") == []
    with pytest.raises(ConfigurationError):
        list_outbox(shop_store, status="sent")  # type: ignore[arg-type]


def test_sinks_need_distinct_names(shop_store: Store) -> None:
    with pytest.raises(ConfigurationError, match="share a name"):
        apply([nudge("1")], shop_store, [Recorder(), Recorder()], now=NOW)


def test_redacted_customer_cancels(shop_store: Store) -> None:
    sink = Recorder()
    action = nudge("3", due_at=NOW + dt.timedelta(hours=1))
    apply([action], shop_store, [sink], now=NOW)
    shop_store.redact_customer("shopify", SHOP, "3")
    [row] = list_outbox(shop_store)
    assert (row.status, row.reason, row.action) == ("cancelled", "customer redacted", {})
    report = apply(None, shop_store, [sink], now=NOW + dt.timedelta(hours=2))
    assert report.delivered == 0 and sink.delivered == []


class Dies(Recorder):
    """A sink whose process dies during every delivery (after sending)."""

    def deliver(self, action, context):  # type: ignore[no-untyped-def]
        super().deliver(action, context)
        raise KeyboardInterrupt  # stands for SIGKILL: nothing after it runs


def test_a_delivery_that_kills_the_process_is_parked_after_the_attempt_limit(
    shop_store: Store,
) -> None:
    sink = Dies()
    backoff = Backoff(max_attempts=3)
    for _ in range(3):
        with pytest.raises(KeyboardInterrupt):
            apply([nudge("1")], shop_store, [sink], now=NOW, backoff=backoff)
    apply([nudge("1")], shop_store, [sink], now=NOW, backoff=backoff)
    [row] = list_outbox(shop_store)
    assert (row.status, row.attempts) == ("parked", 3)
    assert len(sink.delivered) == 3  # the at-least-once bound: max_attempts


# -- issue 16 item 8: a sink's identity does not change with its configuration -------------


def test_moving_a_file_sink_to_another_file_sends_nothing_again(
    shop_store: Store, tmp_path: Any
) -> None:
    from shopsync.sinks import Email, JsonLines, Webhook
    from shopsync.sinks.email import Brand

    first = apply(
        [nudge("1"), nudge("2")],
        shop_store,
        [JsonLines(tmp_path / "a.jsonl", root=tmp_path)],
        now=NOW,
    )
    assert first.delivered == 2
    moved = apply(
        [nudge("1"), nudge("2")],
        shop_store,
        [JsonLines(tmp_path / "b.jsonl", root=tmp_path)],
        now=NOW,
    )
    assert (moved.recorded, moved.delivered) == (0, 0)
    assert not (tmp_path / "b.jsonl").exists() or (tmp_path / "b.jsonl").read_text() == ""
    brand = Brand(name="Acme", address="1 Main St, Springfield")
    one = Email("smtp.a.example", 587, sender="s@a.example", brand=brand)
    other = Email("smtp.b.example", 2525, sender="s@a.example", brand=brand)
    assert one.name == other.name
    assert (
        Webhook("https://a.example/h", "k" * 16).name
        == Webhook("https://b.example/x", "k" * 16).name
    )


def test_outbox_rows_under_old_sink_names_keep_matching_after_the_upgrade(
    store_url: str,
) -> None:
    from sqlalchemy import text

    old = Store(store_url, migrate=False)
    old.migrate("0009")
    with old.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO shops (shop_id, platform, shop, created_at)"
                " VALUES (1, 'shopify', :s, 0)"
            ),
            {"s": SHOP},
        )
        for rid, sink, status in [
            (1, "email:smtp.a.example:587", "done"),
            (2, "email:smtp.b.example:25", "pending"),  # a second old email sink, same key
            (3, "jsonl:out.jsonl", "done"),
            (4, "platform:shopify:acme.myshopify.com", "done"),
        ]:
            conn.execute(
                text(
                    "INSERT INTO outbox (id, shop_id, idempotency_key, sink, stage, kind,"
                    " customer_id, marketing, model, action, status, attempts, due_at,"
                    " next_attempt_at, created_at, updated_at)"
                    " VALUES (:id, 1, 'nudge:1', :sink, 1, 'nudge', '1', 0, 'm', '{}', :st, 1,"
                    " 0, 0, 0, 0)"
                ),
                {"id": rid, "sink": sink, "st": status},
            )
    old.close()
    with Store(store_url) as store:
        rows = {(e.sink, e.status) for e in list_outbox(store)}
    assert rows == {
        ("email", "done"),
        ("email:smtp.b.example:25", "cancelled"),
        ("jsonl", "done"),
        ("platform:shopify:acme.myshopify.com", "done"),
    }


# -- issue 16 item 7: one apply per store at a time, across processes ----------------------


class SlowFile(Recorder):
    """Appends each delivered key to a file (shared by processes), slowly."""

    def __init__(self, path: Any) -> None:
        super().__init__("slowfile")
        self.path = path

    def deliver(self, action: Action, context: DeliveryContext) -> dict[str, Any]:
        import time

        with open(self.path, "a") as out:
            out.write(action.idempotency_key + "\n")
        time.sleep(0.01)
        return {}


def _apply_in_child(url: str, path: str, delay: float, start: Any, done: Any) -> None:
    import time

    store = Store(url, migrate=False)
    start.wait()
    time.sleep(delay)
    try:
        plan = [nudge(str(1 + i % 5), n=i) for i in range(60)]
        apply(plan, store, [SlowFile(path)], now=NOW)
        done.put("ok")
    except BaseException as exc:
        done.put(f"{type(exc).__name__}: {exc}")


@pytest.mark.parametrize("delays", [(0.0, 0.0), (0.0, 0.15), (0.0, 0.4)])
def test_overlapping_applies_in_two_processes_send_each_row_once(
    shop_store: Store, store_url: str, tmp_path: Any, delays: tuple[float, float]
) -> None:
    import multiprocessing as mp

    fork = mp.get_context("fork")
    start, done = fork.Event(), fork.Queue()
    out = tmp_path / "sent.txt"
    shop_store.engine.dispose()  # the children open their own connections
    children = [
        fork.Process(target=_apply_in_child, args=(store_url, str(out), d, start, done))
        for d in delays
    ]
    for child in children:
        child.start()
    start.set()
    outcomes = [done.get(timeout=120) for _ in children]
    for child in children:
        child.join(60)
    assert outcomes == ["ok", "ok"]
    sent = out.read_text().split()
    assert len(sent) == 60 and len(set(sent)) == 60, "a row was sent twice"


def test_rows_changed_between_the_due_read_and_their_actions_read_are_not_sent(
    shop_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Due rows are read without their actions; the actions are read a part at a time (two
    # here). Just before the first part's read: customer 2 unsubscribes through the link
    # (their row stays pending), customer 5 on the platform, customer 3's row is deleted and
    # another run claims customer 4's. Only customer 1's row is sent.
    from shopsync.outbox import _attempts
    from shopsync.store import outbox_rows
    from shopsync.store.schema import outbox, suppressions

    sink = Recorder()
    actions = [nudge(str(i), due_at=NOW + dt.timedelta(hours=1)) for i in range(1, 6)]
    apply(actions, shop_store, [sink], now=NOW)
    read = outbox_rows.actions_of_rows
    sid = shop_store.shop_id("shopify", SHOP)

    def meanwhile(store: Store, row_ids: list[int]) -> dict[int, Any]:
        if len(read_parts) == 0:
            key = outbox.c.idempotency_key
            with store.transaction() as conn:
                conn.execute(
                    insert(suppressions).values(
                        shop_id=sid, customer_id="2", channel="email", created_at=0, source="link"
                    )
                )
                conn.execute(delete(outbox).where(key == actions[2].idempotency_key))
                conn.execute(
                    update(outbox).where(key == actions[3].idempotency_key).values(attempts=1)
                )
            later = NOW + dt.timedelta(days=1)
            store.upsert([customer("5", consent="unsubscribed", updated_at=later)])
        read_parts.append(list(row_ids))
        return read(store, row_ids)

    read_parts: list[list[int]] = []
    monkeypatch.setattr(_attempts, "_PART", 2)
    monkeypatch.setattr(outbox_rows, "actions_of_rows", meanwhile)
    report = apply([], shop_store, [sink], now=NOW + dt.timedelta(hours=2))
    assert len(read_parts) == 3  # 2 + 2 + 1 rows
    assert sink.delivered == [actions[0].idempotency_key]
    rows = {r.customer_id: (r.status, r.attempts) for r in list_outbox(shop_store)}
    assert rows == {
        "1": ("done", 1),
        "2": ("cancelled", 1),
        "4": ("pending", 1),
        "5": ("cancelled", 1),
    }
    assert report.delivered == 1 and report.cancelled == 2


def test_record_in_parts_is_one_transaction_and_skips_repeats_across_parts(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Rows are built two actions at a time here: a failure in the second part leaves no row
    # (and no shop row, nor a remembered id of one); a key repeated in a later part is one row.
    from shopsync.outbox import _queue
    from shopsync.store import outbox_rows

    monkeypatch.setattr(_queue, "_PART", 2)
    new = "new.myshopify.com"
    actions = [nudge(str(i), shop=new) for i in (1, 2, 3)] + [nudge("1", shop=new)]

    class Failing(Recorder):
        def accepts(self, action: Action) -> bool:
            if action.customer_id == "3":
                raise RuntimeError("disk full")
            return True

    with pytest.raises(RuntimeError):
        _queue.record(actions, store, [Failing()], NOW)
    assert list_outbox(store) == [] and store.shops() == []
    assert _queue.record(actions, store, [Recorder()], NOW) == 3
    due = outbox_rows.due_rows(store, ["recorder"])
    assert sorted(r.customer_id for r in due) == ["1", "2", "3"]
    assert {(r.platform, r.shop) for r in due} == {("shopify", new)}


@pytest.mark.parametrize("clock", ["monotonic", "time"])
def test_a_run_paused_past_its_lease_stops_before_the_next_row(
    shop_store: Store, monkeypatch: pytest.MonkeyPatch, clock: str
) -> None:
    # The first delivery pauses the process for twice the ttl (SIGSTOP or a long GC moves the
    # monotonic clock; a suspended machine only the wall clock) and another run takes the
    # expired lease meanwhile: nothing more is sent.
    from shopsync.store import LeaseLost, _engine
    from shopsync.store.schema import leases

    skew = [0.0]
    real = getattr(_engine.time, clock)
    monkeypatch.setattr(_engine.time, clock, lambda: real() + skew[0])

    class Pausing(Recorder):
        def deliver(self, action: Action, context: DeliveryContext) -> dict[str, Any]:
            sent = super().deliver(action, context)
            if len(self.delivered) == 1:
                skew[0] += 2 * 60
                with shop_store.transaction() as conn:
                    conn.execute(update(leases).values(holder="another run", expires_at=0))
            return sent

    sink = Pausing()
    with pytest.raises(LeaseLost):
        apply([nudge(str(i)) for i in range(1, 4)], shop_store, [sink], now=NOW, lease_ttl=60)
    assert len(sink.delivered) == 1

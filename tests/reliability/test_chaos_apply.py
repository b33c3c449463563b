"""Chaos apply: many applies of a growing plan (60 in the suite, 200 for the documented
figures, half on each platform: see tests/reliability/chaos.py), each under random sink
failures and most of them SIGKILLed at a random point; after one clean apply
every platform write exists exactly once, nothing is lost, and email and webhook repeats stay
within the outbox's at-least-once bound, each carrying the same id.

The plan gives every customer a reward code and a tier change, nudges some of them (a
marketing action, so customers without consent must get neither email nor webhook) and grows
by a reward or a nudge on about half the runs. The sinks: the platform (faults from the
emulator: 429, 5xx, dropped connections, truncated answers, answers slower than the client's
timeout), a webhook receiver (500, 503, 429, and answers slower than the sink's timeout after
the body was kept), an SMTP server (451 before accepting, 421 after accepting, 450 for the
recipient) and a JSON Lines file.

The bound checked, from the outbox's docs: a row is claimed (its attempt counted) before each
delivery, so an email goes out at most twice per attempt (the sink reconnects once when a
kept-alive connection was dropped) and a webhook at most once per HTTP try of each attempt.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import shopsync
from shopsync.adapter import adapter_class
from shopsync.http import RetryPolicy
from shopsync.loyalty import balance
from shopsync.outbox import Backoff, list_outbox
from shopsync.sinks.email import message_id
from shopsync.testing import EmulatedShop
from tests.apply.helpers import NOW, Received, Receiver
from tests.reliability.chaos import (
    SEED,
    Kill,
    Tally,
    apply_child,
    flaky_smtp,
    plan_actions,
    run_child,
    runs_on,
)
from tests.sync.emulated import emulated

TIMEOUT = 0.15
"""The platform client's and the webhook sink's read timeout."""
HOOK_TRIES = 3
RETRIES = RetryPolicy(attempts=HOOK_TRIES, max_elapsed=5, initial_wait=0.01, max_wait=0.05)
BACKOFF = Backoff(initial=1.0, factor=1.0, maximum=1.0, max_attempts=10_000)
"""A failed row is due again on the next run (runs are a minute apart on the apply clock)."""
OK = (200, 0.0, b'{"ok":true}')
HOOK_FAULTS: dict[str, tuple[int, float, bytes]] = {
    "500": (500, 0.0, b"{}"),
    "503": (503, 0.0, b"{}"),
    "429": (429, 0.0, b"{}"),
    "timeout_after_accept": (200, TIMEOUT + 0.1, b'{"ok":true}'),
}
SMTP_FAULTS = ["451_before_accept", "421_after_accept", "450_recipient"]


def quiet(receiver: Receiver) -> Receiver:
    """Keep a sender killed mid-request out of stderr (it is the point here, not news)."""
    report = receiver.server.handle_error

    def handle_error(request: Any, address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            report(request, address)

    receiver.server.handle_error = handle_error  # type: ignore[method-assign,assignment]
    return receiver


def unused(receiver: Receiver) -> Counter[str]:
    """Webhook faults still queued in the receiver's script, by name."""
    names = {answer: f"webhook_{name}" for name, answer in HOOK_FAULTS.items()}
    with receiver.lock:
        return Counter(names[a] for a in receiver.script if a in names)


def sink_faults(
    shop: EmulatedShop, receiver: Receiver, smtp: Any, rng: random.Random
) -> Counter[str]:
    """Failures for the next run on every sink; returns the webhook ones queued, less those
    the last run did not reach (the platform and SMTP servers count their own)."""
    faults = shop.faults
    scale = rng.choice([0.0, 0.5, 1.0, 1.0])
    faults.rate_429 = rng.uniform(0, 0.1) * scale
    faults.rate_5xx = rng.uniform(0, 0.1) * scale
    faults.rate_drop = rng.uniform(0, 0.05) * scale
    faults.rate_truncate = rng.uniform(0, 0.06) * scale
    faults.rate_slow = rng.uniform(0, 0.02) * scale
    faults.slow_seconds = rng.choice([0.02, TIMEOUT + 0.05])
    faults.retry_after = rng.choice([0.0, 0.01])
    queued: Counter[str] = Counter()
    queued.subtract(unused(receiver))  # what the last run left unanswered was never injected
    script = []
    for _ in range(rng.choice([0, 1, 2, 3])):
        name = rng.choice(sorted(HOOK_FAULTS))
        queued[f"webhook_{name}"] += 1
        script += [OK] * rng.randint(0, 2) + [HOOK_FAULTS[name]]
    with receiver.lock:
        receiver.script = script
    smtp.script = [rng.choice(SMTP_FAULTS) for _ in range(rng.choice([0, 1, 2]))]
    return queued


@dataclass
class Expected:
    """What the plan asks for, and what the outbox did about it."""

    platform: str
    plan: list[Any]
    customers: list[str]
    nudged: set[str]
    consenting: set[str]
    attempts: dict[tuple[str, str], int] = field(default_factory=dict)
    """Attempts per (idempotency key, sink kind), from the outbox."""
    superseded: set[str] = field(default_factory=set)
    """Gold tier changes the outbox cancelled because the platinum one was written first."""

    @property
    def keys(self) -> set[str]:
        return {a.idempotency_key for a in self.plan}

    @property
    def upgraded(self) -> set[str]:
        """Customers whose gold tier change was followed by a platinum one."""
        return {a.customer_id for a in self.plan if getattr(a, "to_tier", None) == "platinum"}

    @property
    def delivered(self) -> set[str]:
        """Actions every sink must have: all but the superseded ones."""
        return self.keys - self.superseded

    @property
    def withheld(self) -> set[str]:
        """Marketing to customers without consent: never by email or webhook."""
        return {
            a.idempotency_key
            for a in self.plan
            if a.marketing and a.customer_id not in self.consenting
        }

    @property
    def contacted(self) -> set[str]:
        return self.delivered - self.withheld


def check_outbox(store: shopsync.Store, want: Expected, tally: Tally) -> list[str]:
    """Every row settled: done, or cancelled for want of consent or because a later tier
    change was written first (then on every sink); none pending or parked."""
    problems = []
    entries = list_outbox(store)
    for e in entries:
        platform_row = e.sink.startswith("platform:") and e.kind == "loyalty_tier_change"
        if platform_row and e.status == "cancelled" and e.customer_id in want.upgraded:
            want.superseded.add(e.idempotency_key)
    tally.counts["tier_changes_superseded"] = len(want.superseded)
    for e in entries:
        kind = e.sink.split(":", 1)[0]
        want.attempts[(e.idempotency_key, kind)] = e.attempts
        contacts = kind in ("email", "webhook")
        status = "cancelled" if contacts and e.idempotency_key in want.withheld else "done"
        if e.idempotency_key in want.superseded:
            status = "cancelled"
        if e.status != status:
            problems.append(f"outbox {e.idempotency_key} -> {e.sink}: {e.status} ({e.reason})")
    tally.counts["rows"] = len(entries)
    if len(entries) != 4 * len(want.keys):
        problems.append(f"outbox holds {len(entries)} rows for {len(want.keys)} actions")
    return problems


def check_platform(
    shop: EmulatedShop, store: shopsync.Store, want: Expected, tally: Tally
) -> list[str]:
    """Every code created once; every tier tag, nudge tag and loyalty field in place."""
    problems = []
    emulator: Any = shop.emulator
    codes = sorted(a.code for a in want.plan if hasattr(a, "code"))
    if want.platform == "shopify":
        made = sorted(d.code for d in emulator.discounts.values())
        created, conflicts = emulator.writes["discount_created"], emulator.writes["discount_taken"]
    else:
        made = sorted(c["code"] for c in emulator.coupons.values())
        codes = sorted(c.lower() for c in codes)
        created, conflicts = emulator.writes["coupon_created"], emulator.writes["coupon_exists"]
    tally.counts.update(codes_created=created, code_conflicts_resolved=conflicts)
    if made != codes or created != len(codes):
        twice = sorted(c for c, n in Counter(made).items() if n > 1)
        missing = sorted(set(codes) - set(made))
        problems.append(f"codes: {created} made for {len(codes)}; twice {twice}, lost {missing}")
    shop_name = shop.state.shop
    for cid in want.customers:
        tags = set(shop.state.customers[cid].tags)
        tiers = ["silver", "gold"] + (["platinum"] if cid in want.upgraded else [])
        wanted = {f"shopsync-tier-{tiers[-1]}"} | (
            {"shopsync-nudge"} if cid in want.nudged else set()
        )
        if not wanted <= tags or {f"shopsync-tier-{t}" for t in tiers[:-1]} & tags:
            problems.append(f"customer {cid} tags {sorted(tags)}")
        customer = store.get(shopsync.Customer, want.platform, shop_name, cid)
        assert customer is not None
        points = str(balance(store, customer).approved)
        if want.platform == "shopify":
            fields = {
                k: emulator.metafields.get((cid, "loyalty", k), {}).get("value")
                for k in ("tier", "points_balance")
            }
        else:
            meta = emulator.customer_meta.get(cid, {})
            fields = {k: meta.get(f"_loyalty_{k}") for k in ("tier", "points_balance")}
        if fields != {"tier": tiers[-1], "points_balance": points}:
            problems.append(f"customer {cid} loyalty fields {fields}")
    return problems


def check_file(path: Path, want: Expected, tally: Tally) -> list[str]:
    """Every action in the JSON Lines file exactly once."""
    written: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        try:
            written[json.loads(line)["idempotency_key"]] += 1
        except ValueError:
            tally.counts["jsonl_torn_lines"] += 1  # cut by a kill; written again whole
    if written != Counter(want.delivered):
        return [f"jsonl: {sorted(k for k in want.keys if written[k] != 1)[:5]} not once"]
    return []


def check_webhooks(receiver: Any, want: Expected, tally: Tally) -> list[str]:
    """Each contacted action at least once, every copy byte-identical, within the bound."""
    problems = []
    hooks: dict[str, list[bytes]] = defaultdict(list)
    for r in receiver.received:
        if len(r.body) != int(r.headers.get("Content-Length", -1)):
            tally.counts["webhook_torn_requests"] += 1  # the sender died mid-body
            continue
        hooks[r.headers["Idempotency-Key"]].append(r.body)
    if set(hooks) != want.contacted:
        missing = sorted(want.contacted - set(hooks))[:5]
        problems.append(f"webhooks: lost {missing}, unwanted {sorted(set(hooks) - want.contacted)}")
    for key, bodies in hooks.items():
        bound = want.attempts.get((key, "webhook"), 0) * HOOK_TRIES
        if len(set(bodies)) != 1 or len(bodies) > bound:
            problems.append(f"webhook {key}: {len(bodies)} copies, {len(set(bodies))} distinct")
    copies = [len(b) for b in hooks.values()]
    tally.counts["webhook_duplicates"] = sum(copies) - len(copies)
    tally.counts["webhook_keys_repeated"] = sum(n > 1 for n in copies)
    return problems


def check_email(smtp: Any, want: Expected, tally: Tally) -> list[str]:
    """Each contacted action mailed at least once under its Message-ID, within the bound."""
    problems = []
    by_id = {message_id(k, "acme.example"): k for k in want.keys}
    mails: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for m in smtp.messages:
        mails[str(m["Message-ID"])].append((str(m["Subject"]), str(m["To"])))
    if {by_id.get(i) for i in mails} != want.contacted:
        problems.append(f"email: {len(mails)} ids for {len(want.contacted)} contacted actions")
    for mid, copies in mails.items():
        bound = 2 * want.attempts.get((by_id.get(mid, ""), "email"), 0)
        if len(set(copies)) != 1 or len(copies) > bound:
            problems.append(f"email {by_id.get(mid)}: {len(copies)} copies, bound {bound}")
    counts = [len(c) for c in mails.values()]
    tally.counts["email_duplicates"] = sum(counts) - len(counts)
    tally.counts["email_keys_repeated"] = sum(n > 1 for n in counts)
    return problems


@pytest.mark.slow(seconds=25)
@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
@pytest.mark.parametrize("platform", ["shopify", "woocommerce"])
def test_chaos_apply_delivers_each_action_once_and_loses_none(
    platform: str, engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    rng = random.Random(f"{SEED}-apply-{platform}")
    per_platform = -(-runs_on(engine) // 2)  # the runs are shared by the two platforms
    tally = Tally(f"chaos-apply-{platform}" + ("" if engine == "sqlite" else f"-{engine}"))
    options: dict[str, Any] = {"seed": 4, "customers": 14, "orders": 20, "products": 4}
    if platform == "shopify":
        options["restore_rate"] = 20_000.0
    with (
        emulated(platform, **options, faults={"seed": SEED}) as shop,
        quiet(Receiver()) as receiver,
        flaky_smtp() as (smtp, flaky),
    ):
        store_url = (
            f"sqlite:///{tmp_path / 'store.db'}"
            if engine == "sqlite"
            else str(request.getfixturevalue("postgres_url"))
        )
        store = shopsync.Store(store_url)
        shopsync.sync(shopsync.connect(platform, **shop.settings), store)
        # balances are written back only from a current ledger (issue 17.1)
        shopsync.loyalty.update_ledger(store, platform, store.shops()[0][1], as_of=NOW)
        people = [c for c in store.iter(shopsync.Customer, platform, shop.state.shop) if c.email]
        customers = [c.id for c in people][:10]
        consenting = {c.id for c in people if c.consent.email.allows_marketing}
        nudged = customers[:6]
        assert len(customers) == 10 and consenting & set(nudged) and set(nudged) - consenting
        spec = [(kind, c, 1) for c in customers for kind in ("reward", "tier")]
        spec += [("nudge", c, 1) for c in nudged]
        spec += [("upgrade", c, 1) for c in customers[7:]]  # gold, then platinum at once
        settings = {**shop.settings, "retry_policy": RETRIES, "timeout": TIMEOUT}
        job: dict[str, Any] = {
            "platform": platform,
            "factory": adapter_class(platform),
            "settings": settings,
            "store": store_url,
            "dir": str(tmp_path),
            "webhook": receiver.url,
            "smtp_port": smtp.port,
            "retries": RETRIES,
            "backoff": BACKOFF,
            "timeout": TIMEOUT,
        }
        rows = 4 * len(spec)  # what the first run settles; later ones settle a few
        upgrades = customers[7:]
        for run in range(per_platform):
            if rng.random() < 0.5:
                spec.append((rng.choice(["reward", "nudge"]), rng.choice(customers), run + 2))
            if rng.random() < 0.05 and len(upgrades) < len(customers) // 2:
                upgrades.append(rng.choice(sorted(set(customers) - set(upgrades))))
                spec.append(("upgrade", upgrades[-1], run + 2))
            tally.faults.update(sink_faults(shop, receiver, flaky, rng))
            job.update(plan=list(spec), now=NOW + dt.timedelta(minutes=run + 1))
            outcome = run_child(apply_child, (job,), Kill.draw(rng, rows, 0.2, 0.12))
            tally.record(outcome)
            tally.counts["rows_settled_in_runs"] += outcome.events
            if outcome.finished:
                rows = outcome.events + 1

        # the clean run: every sink answers, generous timeouts, the whole plan once more
        shop.faults.clear()
        tally.faults.subtract(unused(receiver))
        with receiver.lock:
            receiver.script = []
        flaky.script = []
        tally.faults.update({f"platform_{k}": v for k, v in shop.faults.counts.items()})
        tally.faults.update({f"smtp_{k}": v for k, v in flaky.injected.items()})
        calm = {**settings, "timeout": 10.0}
        job.update(plan=spec, now=NOW + dt.timedelta(days=1), settings=calm, timeout=10.0)
        final = run_child(apply_child, (job,), None)
        assert final.finished, final.error
        job.update(now=NOW + dt.timedelta(days=2))
        again = run_child(apply_child, (job,), None)  # a clean run after a clean run: nothing
        assert again.finished and again.events == 0, (again.error, again.messages)

        plan = plan_actions(platform, shop.state.shop, spec)
        want = Expected(platform, plan, customers, set(nudged), consenting)
        tally.counts.update(actions=len(want.keys), withheld=len(want.withheld))
        problems = tally.differences
        problems += check_outbox(store, want, tally)
        problems += check_platform(shop, store, want, tally)
        problems += check_file(tmp_path / "actions.jsonl", want, tally)
        problems += check_webhooks(receiver, want, tally)
        problems += check_email(smtp, want, tally)
        store.close()

        tally.save(tmp_path)
        print(tally.line())
        replay = tally.replay()
        assert tally.errors == [], f"{replay}: {tally.errors[:3]}"
        assert problems == [], f"{replay}: {problems[:20]}"
        assert not shop.server.errors, shop.server.errors[:3]
        assert tally.runs == per_platform
        assert tally.kills >= per_platform // 4, tally.line()
        assert sum(tally.faults.values()) >= per_platform // 2, tally.line()
        if per_platform >= 30:  # a storm that long hits every sink and makes repeats
            for family in ("platform", "smtp", "webhook"):
                assert any(k.startswith(family) and n for k, n in tally.faults.items()), family
            # and kills in several phases: before the first delivery, after one to a sink (which
            # sinks depends on thread timing: a storm of 30 met four or five of the five)
            phases = ("start", "platform", "jsonl", "webhook", "email")
            assert sum(tally.counts[f"kills_after_{p}"] > 0 for p in phases) >= 3, tally.line()
            assert tally.counts["webhook_duplicates"] + tally.counts["email_duplicates"] > 0


def test_the_checks_see_repeats_beyond_the_bound_and_lost_messages(tmp_path: Path) -> None:
    plan = plan_actions("shopify", "acme.myshopify.com", [("nudge", "1", 1), ("nudge", "2", 1)])
    first, second = (a.idempotency_key for a in plan)
    want = Expected("shopify", plan, ["1", "2"], {"1", "2"}, {"1", "2"})
    want.attempts = {(first, "webhook"): 1, (first, "email"): 1}
    tally = Tally("checks")

    def hook(body: bytes) -> Received:
        return Received({"Idempotency-Key": first, "Content-Length": str(len(body))}, body)

    def mail() -> EmailMessage:
        message = EmailMessage()
        message["Message-ID"] = message_id(first, "acme.example")
        message["Subject"], message["To"] = "Hello", "c1@example.com"
        return message

    receiver = SimpleNamespace(received=[hook(b"{}"), hook(b"{}")])
    assert check_webhooks(receiver, want, tally) == [f"webhooks: lost {[second]}, unwanted []"]
    receiver.received.append(hook(b'{"changed":1}'))
    assert f"webhook {first}: 3 copies, 2 distinct" in check_webhooks(receiver, want, tally)
    smtp = SimpleNamespace(messages=[mail(), mail(), mail()])
    assert check_email(smtp, want, tally) == [
        "email: 1 ids for 2 contacted actions",
        f"email {first}: 3 copies, bound 2",
    ]
    lines = [json.dumps({"idempotency_key": k}) for k in (first, second, first)]
    (tmp_path / "actions.jsonl").write_text("\n".join(lines) + "\n")
    assert check_file(tmp_path / "actions.jsonl", want, tally) == [f"jsonl: {[first]} not once"]

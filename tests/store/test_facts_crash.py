"""The order facts' snapshot after crashes, foreign files and concurrent writers: a read is
always the database's, whatever state the files are in (store/facts.py)."""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from shopsync.models import LineItem, Money, Order
from shopsync.store import Store, facts
from shopsync.store.read import read_shop
from tests.store.test_facts import PLATFORM, T0, assert_same_read, micros
from tests.test_models import order

SHOP = "acme.myshopify.com"
AT = micros(T0 + dt.timedelta(days=400))


@pytest.fixture(autouse=True)
def snapshot_always(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv(facts.MIN_ORDERS_ENV, "0")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # a PostgreSQL store's files
    yield


def an_order(n: int, *, lines: int = 2, customer: str = "c1", shop: str = SHOP) -> Order:
    at = T0 + dt.timedelta(minutes=n)
    return order(
        id=str(n),
        shop=shop,
        customer_id=customer,
        created_at=at,
        updated_at=at,
        line_items=tuple(
            LineItem(
                id=f"{n}-{k}",
                title="t",
                product_type="Tea",
                quantity=1,
                unit_price=Money.of("5", "USD"),
                total=Money.of("5", "USD"),
            )
            for k in range(lines)
        ),
    )


def folder(store: Store) -> Path:
    assert store.facts_dir is not None
    return store.facts_dir / f"shop-{store.shop_id(PLATFORM, SHOP)}"


def manifest(store: Store) -> dict[str, object]:
    return json.loads((folder(store) / "current.json").read_text())  # type: ignore[no-any-return]


def check(store: Store) -> None:
    assert_same_read(store, store.shop_id(PLATFORM, SHOP), AT)


def snapshotted(store: Store, n: int = 5) -> dict[str, object]:
    store.upsert([an_order(i) for i in range(n)])
    check(store)  # the first read writes the snapshot
    return manifest(store)


def test_a_large_shop_gets_files_a_small_one_does_not(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(facts.MIN_ORDERS_ENV, "6")
    store.upsert([an_order(i) for i in range(5)])
    check(store)
    assert not (folder(store) / "current.json").exists()
    store.upsert([an_order(5)])
    check(store)
    assert manifest(store)["rows"] == {"orders": 6, "lines": 12, "refunds": 0, "fulfillments": 0}


def test_a_stale_snapshot_is_brought_up_to_date(store: Store) -> None:
    first = snapshotted(store)
    store.upsert([an_order(7), an_order(1, lines=3)])
    store.delete(Order, PLATFORM, SHOP, "2")
    check(store)
    again = manifest(store)
    assert again["token"] != first["token"]  # a deletion rewrites the files at once
    store.upsert([an_order(8)])
    check(store)
    assert manifest(store) == again  # a small delta is merged, the files stay


def test_a_shop_mostly_changed_is_read_in_bulk(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = snapshotted(store, n=4)
    monkeypatch.setattr(facts, "_BULK_MIN", 0)
    store.upsert([an_order(i, lines=3) for i in range(2, 9)])
    check(store)
    assert manifest(store)["token"] != first["token"]  # rebuilt, not merged
    assert manifest(store)["rows"] == {"orders": 9, "lines": 25, "refunds": 0, "fulfillments": 0}


@pytest.mark.parametrize("damage", ["cut", "missing", "garbage", "manifest", "empty manifest"])
def test_damaged_files_are_rebuilt(store: Store, damage: str) -> None:
    first = snapshotted(store)
    orders = folder(store) / f"{first['token']}.orders.parquet"
    lines = folder(store) / f"{first['token']}.lines.parquet"
    if damage == "cut":
        data = orders.read_bytes()
        orders.write_bytes(data[: len(data) // 2])
    elif damage == "missing":
        lines.unlink()
    elif damage == "garbage":
        lines.write_bytes(b"PAR1" + b"\0" * 100 + b"PAR1")
    elif damage == "manifest":
        (folder(store) / "current.json").write_text('{"token": "../x", "seq": 1e9}')
    else:
        (folder(store) / "current.json").write_text("")
    store.upsert([an_order(9)])
    check(store)
    assert manifest(store)["token"] != first["token"]
    check(store)


def test_an_old_snapshot_put_back_in_the_cache(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files of an older snapshot put back (a restored cache directory): merged from their own
    sequence value while the database still vouches for them, rebuilt once it no longer does."""
    first = snapshotted(store)
    saved = {p.name: p.read_bytes() for p in folder(store).iterdir()}
    store.delete(Order, PLATFORM, SHOP, "3")  # an erasure: the files are rewritten
    check(store)
    for name, data in saved.items():
        (folder(store) / name).write_bytes(data)
    monkeypatch.setattr(facts, "_KEEP_PINS", 1)
    monkeypatch.setattr(facts, "_REWRITE_MIN", 0)
    store.upsert([an_order(i) for i in range(20, 40)])
    check(store)  # merged from the old files, then rewritten: the old pin goes
    for name, data in saved.items():
        (folder(store) / name).write_bytes(data)
    assert manifest(store)["token"] == first["token"]
    check(store)
    assert manifest(store)["token"] != first["token"]


def test_a_crash_while_writing_keeps_the_old_snapshot(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = snapshotted(store)
    store.delete(Order, PLATFORM, SHOP, "1")

    def killed(*args: object, **kwargs: object) -> None:
        raise OSError("no space left on device")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", killed)
    check(store)  # the rewrite fails half-way: the read is still the database's
    assert manifest(store)["token"] == first["token"]
    monkeypatch.undo()
    monkeypatch.setenv(facts.MIN_ORDERS_ENV, "0")
    (folder(store) / "deadbeef.orders.parquet.tmp").write_bytes(b"PAR1")  # a killed writer's
    check(store)
    assert manifest(store)["token"] != first["token"]


def test_files_of_another_database_are_not_trusted(tmp_path: Path) -> None:
    one = Store(f"sqlite:///{tmp_path / 'one.db'}", facts_dir=tmp_path / "cache")
    two = Store(f"sqlite:///{tmp_path / 'two.db'}", facts_dir=tmp_path / "cache")
    one.upsert([an_order(i) for i in range(5)])
    check(one)
    two.upsert([an_order(i, customer="c2") for i in range(100, 103)])  # same shop id, 1
    assert two.shop_id(PLATFORM, SHOP) == one.shop_id(PLATFORM, SHOP)
    check(two)
    check(one)
    one.close()
    two.close()


def test_a_database_restored_from_an_older_backup(tmp_path: Path) -> None:
    """The backup holds the sequence at 1; the snapshot is at 2. After the restore new writes
    take 2 and 3 again, for other orders: a check of the sequence alone would trust files
    that hold orders the database never had."""
    path = tmp_path / "shop.db"
    store = Store(f"sqlite:///{path}")
    store.upsert([an_order(i) for i in range(3)])
    store.close()
    backup = tmp_path / "backup.db"
    src, dst = sqlite3.connect(path), sqlite3.connect(backup)
    src.backup(dst)
    src.close()
    dst.close()
    store = Store(f"sqlite:///{path}")
    store.upsert([an_order(i) for i in range(10, 15)])
    check(store)
    seq = manifest(store)["seq"]
    store.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    shutil.copy(backup, path)
    store = Store(f"sqlite:///{path}")
    store.upsert([an_order(20)])
    store.upsert([an_order(21)])
    store.upsert([an_order(22)])
    assert manifest(store)["seq"] == seq  # the files still claim to be current
    check(store)
    assert store.count(Order, PLATFORM, SHOP) == 6
    store.close()


def test_a_removed_shop_leaves_no_files_and_no_trust(store: Store) -> None:
    snapshotted(store)
    saved = {p.name: p.read_bytes() for p in folder(store).iterdir()}
    old = folder(store)
    store.remove_shop(PLATFORM, SHOP)
    assert not old.exists()  # the files held its data too
    store.upsert([an_order(50)])  # the shop again, maybe under the same id
    if folder(store) == old:
        old.mkdir(parents=True, exist_ok=True)
        for name, data in saved.items():
            (old / name).write_bytes(data)
    check(store)


# -- two processes -----------------------------------------------------------------------------


def _writer(url: str, start: int, count: int, reads: Any) -> None:
    store = Store(url, migrate=False)
    for n in range(start, start + count):
        if n == start + count - 1:  # the last write waits for a second read to finish, so
            deadline = time.monotonic() + 60  # the reader is seen racing, however fast this is
            while reads.value < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
        store.upsert([an_order(n, lines=1 + n % 3)])
        if n % 7 == 0:
            store.delete(Order, PLATFORM, SHOP, str(n - 3))
    store.close()


def test_a_read_while_another_process_writes_loses_no_row(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(facts, "_REWRITE_MIN", 0)  # every read with a delta rewrites
    store.upsert([an_order(i, lines=1 + i % 3) for i in range(10)])
    url = store.engine.url.render_as_string(hide_password=False)
    store.engine.dispose()  # the child inherits no connection of ours
    fork = multiprocessing.get_context("fork")
    done = fork.Value("i", 0)
    writer = fork.Process(target=_writer, args=(url, 10, 60, done))
    writer.start()
    shop_id = store.shop_id(PLATFORM, SHOP)
    reads = 0
    while writer.is_alive() or reads == 0:
        read = read_shop(store, shop_id, AT)
        # one committed state: every order with all of its lines, no line without its order
        per_order = read.lines.group_by("order_id").len()
        expected = read.orders.select(
            pl.col("id").alias("order_id"), (1 + pl.col("id").cast(pl.Int64) % 3).alias("n")
        )
        joined = expected.join(per_order, on="order_id", how="full", coalesce=True)
        assert joined.filter(pl.col("n") != pl.col("len")).height == 0
        assert joined.filter(pl.col("n").is_null() | pl.col("len").is_null()).height == 0
        reads += 1
        done.value = reads
    writer.join()
    assert writer.exitcode == 0
    check(store)
    assert reads > 1


@pytest.mark.parametrize("damage", ["cut", "missing", "garbage", "rows"])
def test_a_set_read_from_damaged_files_is_left_to_the_indexes(store: Store, damage: str) -> None:
    """The snapshot read for a set of customers (:func:`.facts_set.customer_facts`, its
    customer and order filters) trusts damaged child files no more than a whole read: no
    facts, so the set is read through the indexes; nothing is rewritten by it."""
    from shopsync.store.facts_set import customer_facts

    first = snapshotted(store)
    lines = folder(store) / f"{first['token']}.lines.parquet"
    if damage == "cut":
        data = lines.read_bytes()
        lines.write_bytes(data[: len(data) // 2])
    elif damage == "missing":
        lines.unlink()
    elif damage == "garbage":
        lines.write_bytes(b"PAR1" + b"\0" * 100 + b"PAR1")
    else:  # another snapshot's lines: whole, of the right columns, but not these rows
        pl.read_parquet(lines).head(3).write_parquet(lines)
    sid = store.shop_id(PLATFORM, SHOP)
    wanted = {"orders": ["customer_id"], "lines": ["quantity"]}
    assert customer_facts(store, sid, ["c1"], wanted) is None
    assert manifest(store)["token"] == first["token"]

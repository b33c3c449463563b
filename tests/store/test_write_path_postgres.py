"""What keeps PostgreSQL upserts fast (issue 20), each as a property a test can see fail:

- the reads of an upsert have one SQL text whatever the page's ids (one array parameter, not
  an IN list of one parameter per id), so psycopg prepares them once per connection;
- the change notes of a page are one statement, not one per customer;
- new records go straight into their table by COPY under a savepoint (a bounded number a
  transaction), the staging table only when a key is taken;
- the staging table of a connection is created once, not once per page, and holds nothing
  from one transaction into the next, even after a rollback; a page empties it only before a
  second batch of its transaction (its commit does it otherwise);
- a page takes its change sequence value in one statement (``UPDATE ... RETURNING``);
- the columnar path reads a page's tombstones, stored versions and open checkouts in one
  statement, and sends its change notes with its sequence value's ``UPDATE``;
- a first sync into empty tables gives the planner statistics early (``ANALYZE``), instead
  of leaving it to assume empty tables until autovacuum comes round (up to a minute, by
  which time a fast first sync has scanned whole tables for every page's lookups).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event, select, text

from shopsync._instants import to_micros
from shopsync.errors import StoreError
from shopsync.ingest_columns import OrderRows
from shopsync.models import LineItem, Money, Order
from shopsync.store import Store, _copy
from shopsync.store._rows import order_rows
from shopsync.store.fast_rows import upsert_order_rows
from shopsync.store.schema import line_items, orders

pytestmark = pytest.mark.postgres

T0 = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
SHOP = "speed.myshopify.com"


def make(start: int, n: int, bump: int = 0) -> list[Order]:
    usd = Money(amount=Decimal("5.00"), currency="USD")
    return [
        Order(
            platform="shopify",
            shop=SHOP,
            id=str(i),
            name=f"#{i}",
            customer_id=str(i % 7),
            created_at=T0 + dt.timedelta(minutes=i),
            updated_at=T0 + dt.timedelta(minutes=i, seconds=bump),
            financial_status="paid",
            currency="USD",
            subtotal=usd,
            total_discounts=usd,
            total_shipping=usd,
            total_tax=usd,
            total=usd,
            total_refunded=usd,
            line_items=tuple(
                LineItem(id=f"{i}-{k}", title="t", quantity=1, unit_price=usd, total=usd)
                for k in range(2)
            ),
        )
        for i in range(start, start + n)
    ]


@pytest.fixture
def store(postgres_url: str) -> Iterator[Store]:
    s = Store(postgres_url)
    yield s
    s.close()


class Statements:
    """The statements sent, a statement sent with a COPY's start (its savepoint) among them."""

    def __init__(self, store: Store) -> None:
        self.seen: list[tuple[str, bool]] = []
        self.store = store
        self._real = _copy._stream

    def __enter__(self) -> Statements:
        event.listen(self.store.engine, "before_cursor_execute", self._add)
        _copy._stream = self._stream  # type: ignore[assignment]
        return self

    def _stream(self, conn: Any, into: str, *args: Any) -> None:
        if len(args) > 3 and args[3]:
            self.seen.append((args[3], False))
        self._real(conn, into, *args)

    def _add(
        self, conn: Any, cursor: Any, statement: str, params: Any, ctx: Any, many: bool
    ) -> None:
        self.seen.append((" ".join(statement.split()), many))

    def __exit__(self, *exc: object) -> None:
        event.remove(self.store.engine, "before_cursor_execute", self._add)
        _copy._stream = self._real

    def texts(self, start: str) -> set[str]:
        return {s for s, _ in self.seen if s.startswith(start)}


def test_the_reads_of_an_upsert_have_one_text_whatever_the_ids(store: Store) -> None:
    store.upsert(make(0, 20))
    with Statements(store) as small:
        store.upsert(make(100, 10) + make(5, 3, bump=1))  # new ones, and newer versions
    with Statements(store) as large:
        store.upsert(make(200, 40) + make(10, 6, bump=1))
    assert small.texts("SELECT") == large.texts("SELECT")
    assert small.texts("DELETE") == large.texts("DELETE")
    assert any("ANY" in s for s in small.texts("SELECT"))


def test_the_reads_of_the_columnar_path_have_one_text_whatever_the_ids(store: Store) -> None:
    """The same for orders written from rows (``fast_rows.upsert_order_rows``): its lookups
    of tombstones and stored versions and its deletions of replaced rows."""

    def rows(orders: list[Order]) -> list[OrderRows]:
        return [
            OrderRows(o.id, o.customer_id, to_micros(o.updated_at), order_rows(0, o), {})
            for o in orders
        ]

    def write(orders: list[Order]) -> None:
        with store.transaction() as conn:
            upsert_order_rows(store, conn, "shopify", SHOP, rows(orders))

    write(make(0, 20))
    with Statements(store) as small:
        write(make(100, 10) + make(5, 3, bump=1))
    with Statements(store) as large:
        write(make(200, 40) + make(10, 6, bump=1))
    assert small.texts("SELECT") == large.texts("SELECT")
    assert small.texts("DELETE") == large.texts("DELETE")
    assert any("ANY" in s for s in small.texts("SELECT") | small.texts("DELETE"))


@pytest.mark.parametrize(
    "odd", ['a"b', "a\\b", "a,b", "{a}", " a ", "NULL", "", 'é\\"', "\\", '"', "a\tb\nc"]
)
def test_ids_in_an_array_parameter_match_as_they_are(store: Store, odd: str) -> None:
    """The ids of a lookup go to PostgreSQL as one array literal (quoted and escaped here:
    psycopg's list dumper cost about a microsecond an id); whatever an id holds, it matches
    itself and nothing else."""
    from shopsync.store._rows import among

    ids = [odd, f"x{odd}", "plain"]
    with store.engine.connect() as conn:
        conn.exec_driver_sql("CREATE TEMPORARY TABLE t_ids (id VARCHAR(255))")
        conn.exec_driver_sql(
            "INSERT INTO t_ids VALUES (%(a)s), (%(b)s), ('other')", {"a": odd, "b": f"x{odd}"}
        )
        table = text("SELECT id FROM t_ids").columns(line_items.c.id).subquery()
        found = conn.execute(select(table.c.id).where(among(conn, table.c.id, ids))).scalars()
        assert sorted(found) == sorted([odd, f"x{odd}"])
        for one in ([odd], ["nothing"], []):
            hits = conn.execute(select(table.c.id).where(among(conn, table.c.id, one))).scalars()
            assert list(hits) == [i for i in one if i == odd]


def test_an_id_holding_a_nul_matches_no_other_id(store: Store) -> None:
    """PostgreSQL text holds no NUL, so the array literal separates its ids with one: an id
    holding a NUL must not become two ids ("a" and "b" deleted for "a\\x00b"). It is refused,
    as psycopg refuses any text parameter holding one, or matches nothing."""
    from sqlalchemy.exc import StatementError

    from shopsync.store._rows import among

    with store.engine.connect() as conn:
        conn.exec_driver_sql("CREATE TEMPORARY TABLE t_nul (id VARCHAR(255))")
        conn.exec_driver_sql("INSERT INTO t_nul VALUES ('a'), ('b'), ('c')")
        table = text("SELECT id FROM t_nul").columns(line_items.c.id).subquery()
        for ids in (["a\x00b"], ["c", "a\x00b"], ["a\x00"]):
            try:
                with conn.begin_nested():
                    query = select(table.c.id).where(among(conn, table.c.id, ids))
                    found = sorted(conn.execute(query).scalars())
            except StatementError:
                found = []  # refused
            assert not {"a", "b"} & set(found), ids


def test_an_id_longer_than_the_column_matches_no_other_id(store: Store) -> None:
    """A cast to ``VARCHAR(255)[]`` cuts each id to 255 characters without an error: an id
    of 300 would match the stored id of its first 255 (a redaction of one customer erasing
    another). The array keeps its ids whole."""
    from shopsync.store._rows import among

    stored_id = "x" * 255
    assert str(line_items.c.id.type) == "VARCHAR(255)"
    with store.engine.connect() as conn:
        conn.exec_driver_sql("CREATE TEMPORARY TABLE t_long (id VARCHAR(255))")
        conn.exec_driver_sql("INSERT INTO t_long VALUES (%(a)s)", {"a": stored_id})
        table = text("SELECT id FROM t_long").columns(line_items.c.id).subquery()
        for ids in ([stored_id + "y" * 45], ["a", stored_id + "z"]):
            found = conn.execute(select(table.c.id).where(among(conn, table.c.id, ids)))
            assert list(found.scalars()) == [], ids
        found = conn.execute(select(table.c.id).where(among(conn, table.c.id, [stored_id])))
        assert list(found.scalars()) == [stored_id]


def test_an_array_of_ids_is_one_text_parameter(store: Store) -> None:
    from shopsync.store._rows import among

    seen: list[Any] = []

    def grab(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        seen.append(params)

    event.listen(store.engine, "before_cursor_execute", grab)
    try:
        with store.engine.connect() as conn:
            conn.execute(select(orders.c.id).where(among(conn, orders.c.id, ["1", "2"])))
    finally:
        event.remove(store.engine, "before_cursor_execute", grab)
    assert [v for v in seen[-1].values() if isinstance(v, str)] == ['{"1","2"}']


def test_the_change_notes_of_a_page_are_one_statement(store: Store) -> None:
    with Statements(store) as seen:
        store.upsert(make(0, 40))
    notes = [(s, many) for s, many in seen.seen if "changed_customers" in s]
    assert len(notes) == 1 and not notes[0][1]  # one statement, not an executemany
    with store.engine.connect() as conn:
        noted = dict(conn.execute(text("SELECT customer_id, seq FROM changed_customers")).all())
    assert noted.keys() == {str(c) for c in range(7)}
    assert sorted(noted.values()) == list(range(1, 8))  # each noted once


def test_new_records_go_straight_into_their_table(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """New orders are COPied into ``orders`` under a savepoint: no staging table, no merge."""
    monkeypatch.setattr(_copy, "COPY_MIN_ROWS", 1)
    with Statements(store) as seen:
        store.upsert(make(0, 20))
        store.upsert(make(10, 20, bump=1))  # 10-19 replaced (removed first), 20-29 new
    staged = [s for s, _ in seen.seen if "shopsync_stage" in s or 'INTO "orders"' in s]
    assert staged == []
    assert len([s for s, _ in seen.seen if s.startswith("SAVEPOINT")]) == 2
    assert not [s for s, _ in seen.seen if s.startswith("RELEASE")]  # the commit releases
    with store.engine.connect() as conn:
        stored = dict(conn.execute(select(orders.c.id, orders.c.updated_at)).all())
    assert len(stored) == 30
    assert stored["15"] - stored["5"] == (10 * 60 + 1) * 1_000_000  # 15 is the newer version


def test_a_key_taken_rolls_back_to_its_own_copys_savepoint(store: Store) -> None:
    """The savepoints of one transaction's COPYs share a name and stay until its end: a key
    taken in the second COPY rolls back to the second's savepoint (the newest of the name),
    never over the first batch, and the second batch takes the guarded merge."""
    taken = [dict(r) for r in order_rows(0, make(10, 1, bump=1)[0])["orders"]]
    with store.transaction() as conn:
        store.upsert(make(10, 1), conn=conn)  # "10" stored before the COPYs
    first = [row for o in make(0, 10) for row in order_rows(0, o)["orders"]]
    second = [row for o in make(20, 9) for row in order_rows(0, o)["orders"]] + taken
    with Statements(store) as seen, store.transaction() as conn:
        shop_id = store.shop_id("shopify", SHOP, conn)
        for row in first + second:
            row["shop_id"] = shop_id
        _copy.insert_rows(conn, orders, first, min_rows=1)
        _copy.insert_rows(conn, orders, second, min_rows=1)
    assert [s for s, _ in seen.seen if s.startswith("ROLLBACK TO")] == [
        "ROLLBACK TO SAVEPOINT shopsync_copy"
    ]
    with store.engine.connect() as conn:
        stored = dict(conn.execute(select(orders.c.id, orders.c.updated_at)).all())
    assert len(stored) == 20  # 0-9 (the first COPY), 10 replaced, 20-28 merged
    assert stored["10"] == taken[0]["updated_at"]


def test_a_copys_savepoint_goes_with_the_copy(store: Store) -> None:
    """Inside a begun transaction the savepoint is no statement of its own (a round trip a
    page): it rides with the COPY's start, and is there to roll back to."""
    rows = [row for o in make(0, 10) for row in order_rows(0, o)["orders"]]
    sent: list[str] = []

    def grab(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement)

    event.listen(store.engine, "before_cursor_execute", grab)
    try:
        with store.transaction() as conn:
            shop_id = store.shop_id("shopify", SHOP, conn)
            for row in rows:
                row["shop_id"] = shop_id
            _copy.insert_rows(conn, orders, rows, min_rows=1)
            conn.exec_driver_sql("ROLLBACK TO SAVEPOINT shopsync_copy")  # fails if none
            assert conn.execute(select(orders.c.id)).all() == []
    finally:
        event.remove(store.engine, "before_cursor_execute", grab)
    assert not [s for s in sent if s.startswith("SAVEPOINT")]


def test_a_transaction_takes_a_bounded_number_of_savepoints(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past ``SAVEPOINTS`` in one transaction (each takes a subtransaction id) the batches are
    staged and merged, and every one is stored."""
    monkeypatch.setattr(_copy, "COPY_MIN_ROWS", 1)
    monkeypatch.setattr(_copy, "SAVEPOINTS", 2)
    with Statements(store) as seen, store.transaction() as conn:
        for page in range(4):
            store.upsert(make(page * 10, 10), conn=conn)
    assert len([s for s, _ in seen.seen if s.startswith("SAVEPOINT")]) == 2
    assert len([s for s, _ in seen.seen if s.startswith('INSERT INTO "orders"')]) == 2
    with Statements(store) as later:  # the next transaction has its own allowance
        store.upsert(make(100, 10))
    assert len([s for s, _ in later.seen if s.startswith("SAVEPOINT")]) == 1
    with store.engine.connect() as conn:
        assert len(conn.execute(select(orders.c.id)).all()) == 50


def test_the_staging_table_is_created_once_per_connection(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_copy, "COPY_MIN_ROWS", 1)
    monkeypatch.setattr(_copy, "SAVEPOINTS", 0)  # the staging path
    with Statements(store) as seen:
        for page in range(5):
            store.upsert(make(page * 20, 20))
    creates = [s for s, _ in seen.seen if s.startswith("CREATE TEMPORARY TABLE")]
    assert len(creates) == 1, creates  # orders only: child tables take no staging table


def test_the_staging_table_is_emptied_only_before_a_second_batch(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page stages once a table and its commit empties the staging table: no DELETE after
    each insert; a second batch in one transaction empties it first and stages only its own."""
    monkeypatch.setattr(_copy, "COPY_MIN_ROWS", 1)
    monkeypatch.setattr(_copy, "SAVEPOINTS", 0)  # the staging path
    store.upsert(make(0, 10))
    deletes = 'DELETE FROM "shopsync_stage_orders"'
    with Statements(store) as seen, store.transaction() as conn:
        store.upsert(make(100, 10), conn=conn)
        assert not seen.texts(deletes)
        store.upsert(make(200, 10), conn=conn)
        staged = conn.exec_driver_sql('SELECT id FROM pg_temp."shopsync_stage_orders"')
        assert sorted(int(i) for i in staged.scalars()) == list(range(200, 210))
    assert [s for s, _ in seen.seen if s.startswith(deletes)] == [deletes]
    with Statements(store) as later:
        store.upsert(make(300, 10))
    assert not later.texts(deletes)
    with store.engine.connect() as conn:
        assert len(conn.execute(select(orders.c.id)).all()) == 40


def test_a_page_takes_its_change_sequence_value_in_one_statement(store: Store) -> None:
    store.upsert(make(0, 10))
    with Statements(store) as seen:
        store.upsert(make(100, 10))
    touching = [s for s, _ in seen.seen if "facts_seq" in s]
    assert len(touching) == 1 and "RETURNING" in touching[0], touching


def test_a_rolled_back_page_leaves_nothing_staged_for_the_next(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first page of a connection fails after its orders were staged (its transaction,
    which created the staging table, rolls back); later pages still stage and store exactly
    their own rows."""
    monkeypatch.setattr(_copy, "COPY_MIN_ROWS", 1)
    monkeypatch.setattr(_copy, "SAVEPOINTS", 0)  # the staging path
    store.engine.dispose()  # one fresh connection for what follows
    failing = make(0, 10)
    bad = failing[0].model_copy(
        update={"line_items": (failing[0].line_items[0], failing[0].line_items[0])}
    )
    with pytest.raises(StoreError):
        store.upsert([bad, *failing[1:]])
    with store.transaction() as conn:  # two pages in one transaction, then one after
        store.upsert(make(100, 10), conn=conn)
        store.upsert(make(200, 10), conn=conn)
    store.upsert(make(300, 10))
    with store.engine.connect() as conn:
        ids = sorted(int(i) for i in conn.execute(select(orders.c.id)).scalars())
        lines = conn.execute(select(line_items.c.id)).scalars().all()
    assert ids == [*range(100, 110), *range(200, 210), *range(300, 310)]
    assert len(lines) == 2 * 30


def test_a_first_sync_gives_the_planner_statistics_early(store: Store) -> None:
    def analyzed() -> dict[str, float]:
        with store.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT relname, reltuples FROM pg_class "
                    "WHERE relnamespace = current_schema()::regnamespace "
                    "AND relname IN ('orders', 'line_items')"
                )
            ).all()
        return {name: tuples for name, tuples in rows}

    assert set(analyzed().values()) == {-1.0}  # never analyzed
    store.upsert(make(0, 250))
    assert analyzed() == {"orders": 250.0, "line_items": 500.0}
    for page in range(1, 4):  # statistics follow the growth while the tables are young
        store.upsert(make(page * 250, 250))
    assert analyzed()["orders"] >= 500


def test_the_writers_statistics_cover_the_key_only(store: Store) -> None:
    """The key's columns are what a page's lookups need (about a fifth of a whole table's
    ANALYZE, measured); the rest stays autovacuum's, whose count of changes since an analyze
    a column list does not reset."""
    store.upsert(make(0, 250))
    with store.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT tablename, attname FROM pg_stats WHERE schemaname = current_schema() "
                "AND tablename IN ('orders', 'line_items')"
            )
        ).all()
    columns: dict[str, set[str]] = {}
    for table, column in rows:
        columns.setdefault(table, set()).add(column)
    assert columns == {"orders": {"shop_id", "id"}, "line_items": {"shop_id", "order_id", "id"}}


def test_the_writers_statistics_take_a_small_sample(store: Store) -> None:
    """The writer's ANALYZE samples ``SAMPLE_TARGET`` x 300 rows (a histogram of at most
    ``SAMPLE_TARGET`` + 1 bounds); the session's own target is back after the transaction."""
    with store.engine.connect() as conn:
        before = conn.exec_driver_sql("SHOW default_statistics_target").scalar()
    store.upsert(make(0, 250))
    with store.engine.connect() as conn:
        bounds = conn.execute(
            text(
                "SELECT array_length(histogram_bounds, 1) FROM pg_stats"
                " WHERE schemaname = current_schema() AND tablename = 'orders'"
                " AND attname = 'id'"
            )
        ).scalar_one()
        after = conn.exec_driver_sql("SHOW default_statistics_target").scalar()
    assert bounds is not None and 2 <= bounds <= _copy.SAMPLE_TARGET + 1
    assert after == before


def test_a_page_of_orders_reads_the_stored_orders_once(store: Store) -> None:
    """The versions the change notes compare and the ones the upsert classifies by are one
    read; what the write left is known from the rows it wrote (the writer holds the shop's
    lock: nothing else writes its orders in between)."""
    store.upsert(make(0, 20))
    with Statements(store) as seen:
        store.upsert(make(10, 20, bump=1) + make(0, 5))  # newer, unchanged and new orders
    reads = [s for s, _ in seen.seen if s.startswith("SELECT orders.")]
    assert len(reads) == 1, reads
    with store.engine.connect() as conn:
        noted = dict(conn.execute(text("SELECT customer_id, seq FROM changed_customers")).all())
    # every customer's orders changed again: each noted once more (the store's note sequence)
    assert noted.keys() == {str(c) for c in range(7)}
    assert sorted(noted.values()) == list(range(8, 15))
    store.upsert(make(0, 30, bump=1))  # 0-9 newer, 10-29 unchanged: customers of 0-9 noted
    with store.engine.connect() as conn:
        noted = dict(conn.execute(text("SELECT customer_id, seq FROM changed_customers")).all())
    assert noted.keys() == {str(c) for c in range(7)}
    assert sorted(noted.values()) == list(range(15, 22))
    store.upsert(make(10, 20, bump=1))  # nothing new: nothing noted
    with store.engine.connect() as conn:
        again = dict(conn.execute(text("SELECT customer_id, seq FROM changed_customers")).all())
    assert again == noted


def test_a_staging_table_gone_behind_the_stores_back_costs_one_page(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should a connection's staging table vanish although its creation was seen to commit,
    the page that finds it missing fails (and rolls back whole) and the next creates it."""
    monkeypatch.setattr(_copy, "COPY_MIN_ROWS", 1)
    monkeypatch.setattr(_copy, "SAVEPOINTS", 0)  # the staging path
    store.engine.dispose()
    store.upsert(make(0, 10))
    with store.engine.begin() as conn:  # the pool's one connection: the store's
        conn.exec_driver_sql('DROP TABLE pg_temp."shopsync_stage_orders"')
    with pytest.raises(StoreError):
        store.upsert(make(100, 10))
    store.upsert(make(100, 10))
    with store.engine.connect() as conn:
        assert len(conn.execute(select(orders.c.id)).all()) == 20


def test_a_savepoint_rolled_back_over_the_staging_tables_creation(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A caller's savepoint that rolls back undoes the creation of a staging table made inside
    it; a later batch of the same transaction creates it again rather than fail the whole
    transaction on a missing table."""
    monkeypatch.setattr(_copy, "COPY_MIN_ROWS", 1)
    monkeypatch.setattr(_copy, "SAVEPOINTS", 0)  # the staging path
    store.upsert(make(0, 10))
    store.engine.dispose()  # a fresh connection: no staging table yet
    with store.transaction() as conn:
        with conn.begin_nested() as savepoint:
            store.upsert(make(0, 10, bump=50), conn=conn)  # creates the staging table
            savepoint.rollback()
        store.upsert(make(5, 10, bump=60), conn=conn)
    with store.engine.connect() as conn:
        stored = dict(conn.execute(select(orders.c.id, orders.c.updated_at)).all())
    assert len(stored) == 15
    assert stored["0"] == to_micros(T0)  # the rolled-back version left nothing
    assert stored["5"] == to_micros(T0 + dt.timedelta(minutes=5, seconds=60))


def test_the_columnar_paths_lookups_are_one_round_trip(store: Store) -> None:
    """Tombstones, stored versions and open checkouts: one statement, and each still heard
    (a tombstoned order goes back to the caller, an unchanged one is counted, a checkout that
    the paid order is gets completed)."""
    from shopsync.store.checkout_rows import upsert_checkouts
    from tests.store.test_checkouts import checkout

    def rows(orders: list[Order]) -> list[OrderRows]:
        return [
            OrderRows(o.id, o.customer_id, to_micros(o.updated_at), order_rows(0, o), {})
            for o in orders
        ]

    store.upsert(make(0, 5))
    shop_id = store.shop_id("shopify", SHOP)
    with store.transaction() as conn:
        conn.execute(text(f"INSERT INTO tombstones VALUES ({shop_id}, 'orders', '6', 'x', 0)"))
    at = T0 + dt.timedelta(minutes=7)
    upsert_checkouts(store, [checkout(shop=SHOP, id="7", created_at=at, updated_at=at)])
    with Statements(store) as seen, store.transaction() as conn:
        done, back = upsert_order_rows(store, conn, "shopify", SHOP, rows(make(0, 10)))
    reads = [s for s, _ in seen.seen if s.startswith("SELECT") and "advisory" not in s]
    assert len(reads) == 1, reads
    assert [r.id for r in back] == ["6"]
    assert (done.unchanged, done.inserted) == (5, 4)
    with store.engine.connect() as conn:
        completed = conn.execute(text("SELECT id FROM checkouts WHERE completed_at IS NOT NULL"))
        assert [r.id for r in completed] == ["7"]


def test_the_columnar_paths_notes_ride_with_its_change_sequence_value(store: Store) -> None:
    """A page's change notes and its ``UPDATE shops``: one statement, and both still done
    (the orders take the new sequence value, each customer's note is written once)."""

    def rows(orders: list[Order]) -> list[OrderRows]:
        return [
            OrderRows(o.id, o.customer_id, to_micros(o.updated_at), order_rows(0, o), {})
            for o in orders
        ]

    for bump, first in [(0, 1), (1, 8)]:
        with Statements(store) as seen, store.transaction() as conn:
            upsert_order_rows(store, conn, "shopify", SHOP, rows(make(0, 10, bump=bump)))
        touching = [s for s, _ in seen.seen if "changed_customers" in s or "facts_seq" in s]
        assert len(touching) == 1, touching
        with store.engine.connect() as conn:
            noted = dict(conn.execute(text("SELECT customer_id, seq FROM changed_customers")).all())
            seqs = set(conn.execute(text("SELECT DISTINCT seq FROM orders")).scalars())
            facts_seq = conn.execute(text("SELECT facts_seq FROM shops")).scalar()
        assert noted.keys() == {str(c) for c in range(7)}
        assert sorted(noted.values()) == list(range(first, first + 7))
        assert seqs == {facts_seq}


@pytest.mark.parametrize("odd", ['a"b', "a\\b", "a,b", "{a}", " a ", "NULL", 'é\\"'])
def test_the_columnar_paths_plain_statements_take_ids_as_they_are(store: Store, odd: str) -> None:
    """The columnar path's lookup and change notes are plain SQL text, their ids array
    literals quoted here: an odd id matches itself only (its stored version seen, its
    tombstone heard, its customer noted as it is)."""

    def write(orders: list[Order]) -> tuple[Any, list[OrderRows]]:
        batch = [
            OrderRows(o.id, o.customer_id, to_micros(o.updated_at), order_rows(0, o), {})
            for o in orders
        ]
        with store.transaction() as conn:
            return upsert_order_rows(store, conn, "shopify", SHOP, batch)

    odd_ones = [o.model_copy(update={"id": odd + o.id, "customer_id": odd}) for o in make(0, 3)]
    done, back = write(odd_ones)
    assert (done.inserted, back) == (3, [])
    shop_id = store.shop_id("shopify", SHOP)
    with store.transaction() as conn:
        conn.execute(
            text("INSERT INTO tombstones VALUES (:s, 'orders', :id, 'deleted', 0)"),
            {"s": shop_id, "id": odd + "9"},
        )
    later = [o.model_copy(update={"id": odd + o.id, "customer_id": odd}) for o in make(9, 1)]
    done, back = write(odd_ones + later)
    assert (done.unchanged, done.inserted, [r.id for r in back]) == (3, 0, [odd + "9"])
    with store.engine.connect() as conn:
        noted = conn.execute(text("SELECT customer_id, seq FROM changed_customers")).all()
    assert noted == [(odd, 1)]

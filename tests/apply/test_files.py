"""File sinks: JSON Lines, CSV, hashed ad audiences; paths kept inside their directory."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import pytest

from shopsync.errors import ConfigurationError
from shopsync.outbox import apply, list_outbox
from shopsync.sinks import AdAudience, Csv, JsonLines
from shopsync.sinks.files import hash_identifier, normalize_email, normalize_phone
from shopsync.store import Store
from shopsync.store.schema import outbox
from tests.apply.helpers import NOW, customer, nudge


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(f"sqlite:///{tmp_path / 'store.db'}")
    s.upsert(
        [
            customer("1", phone="(555) 010-0199", default_address={"country_code": "US"}),
            customer("2", email=" Jane.Doe@GMail.com "),
            customer("3", email=None, phone="030 1234567", default_address={"country_code": "DE"}),
        ]
    )
    return s


@pytest.mark.parametrize("path", ["../out.jsonl", "/etc/passwd", "sub/../../x.jsonl", "."])
def test_paths_outside_the_directory_are_refused(tmp_path: Path, path: str) -> None:
    with pytest.raises(ConfigurationError):
        JsonLines(path, root=tmp_path)


def test_symlink_out_of_the_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "link.csv").symlink_to(tmp_path / "elsewhere.csv")
    with pytest.raises(ConfigurationError):
        Csv("link.csv", root=tmp_path / "root")


def test_jsonl_writes_each_action_once_even_after_a_crash(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "out" / "actions.jsonl"
    apply([nudge("1"), nudge("2")], store, [JsonLines("out/actions.jsonl", root=tmp_path)], now=NOW)
    with path.open("a") as handle:
        handle.write('{"idempotency_key": "cut sho')  # a line a crash cut short
    with store.transaction() as conn:  # rows not settled before the crash
        conn.execute(outbox.update().values(status="pending"))
    report = apply(
        [nudge("1"), nudge("2"), nudge("3")],
        store,
        [JsonLines("out/actions.jsonl", root=tmp_path)],
        now=NOW,
    )
    assert report.delivered == 3
    lines = path.read_text().splitlines()
    keys = []
    for line in lines:
        try:
            keys.append(json.loads(line)["idempotency_key"])
        except ValueError:
            continue
    assert keys == [nudge(str(i)).idempotency_key for i in (1, 2, 3)]
    results = [r.result for r in list_outbox(store)]
    assert [r["written"] for r in results if r] == [False, False, True]


def test_a_csv_row_cut_inside_its_last_cell_is_written_again(store: Store, tmp_path: Path) -> None:
    columns = ("customer_id", "reason")
    apply([nudge("1")], store, [Csv("a.csv", root=tmp_path, columns=columns)], now=NOW)
    path = tmp_path / "a.csv"
    whole = path.read_bytes()
    path.write_bytes(whole[:-3])  # every cell still there, the last one cut short
    with store.transaction() as conn:  # not settled before the crash
        conn.execute(outbox.update().values(status="pending"))
    report = apply([nudge("1")], store, [Csv("a.csv", root=tmp_path, columns=columns)], now=NOW)
    assert report.delivered == 1
    rows = list(csv.reader(path.read_text().splitlines()))
    assert rows[-1] == list(csv.reader(whole.decode().splitlines()))[-1]
    assert [r.result["written"] for r in list_outbox(store) if r.result] == [True]


def test_csv_neutralises_formulas(store: Store, tmp_path: Path) -> None:
    evil = nudge("1", reason='=HYPERLINK("http://evil")')
    apply([evil], store, [Csv("a.csv", root=tmp_path, columns=("customer_id", "reason"))], now=NOW)
    rows = list(csv.reader((tmp_path / "a.csv").read_text().splitlines()))
    assert rows[0] == ["idempotency_key", "customer_id", "reason"]
    assert rows[1][2] == '\'=HYPERLINK("http://evil")'


def test_normalisation_for_ad_platforms() -> None:
    assert normalize_email(" Jane.Doe@GMail.com ") == "jane.doe@gmail.com"
    assert normalize_email("Jane.Doe@gmail.com", gmail_dots=True) == "janedoe@gmail.com"
    assert normalize_email("not an email") is None
    assert normalize_phone("(555) 010-0199", "US") == "+15550100199"
    assert normalize_phone("+1 555 010 0199") == "+15550100199"
    assert normalize_phone("0049 30 1234567") == "+49301234567"
    assert normalize_phone("030 1234567", "DE") == "+49301234567"
    assert normalize_phone("06 12 34 56 78", "IT") == "+390612345678"  # Italy keeps its 0
    assert normalize_phone("12345", "US") is None
    assert normalize_phone("555 0100", None) is None
    assert hash_identifier("test@example.com") == (
        "973dfe463ec85785f5f95af5ba3906eedb2d931c24e69824a89ea65dba4e813b"
    )


def test_audience_holds_hashes_only_and_each_customer_once(store: Store, tmp_path: Path) -> None:
    sink = AdAudience("match.csv", root=tmp_path)
    # ad targeting is marketing: customer 1 is subscribed
    report = apply([nudge("1"), nudge("1", 2), nudge("2"), nudge("3")], store, [sink], now=NOW)
    assert report.delivered == 4
    text = (tmp_path / "match.csv").read_text()
    lines = text.splitlines()
    assert lines[0] == "Email,Phone"
    assert lines[1] == (f"{hash_identifier('c1@example.com')},{hash_identifier('+15550100199')}")
    assert lines[2] == f"{hash_identifier('janedoe@gmail.com')},"
    assert lines[3] == f",{hash_identifier('+49301234567')}"
    assert len(lines) == 4  # customer 1 twice, written once
    assert "example.com" not in text and "+1555" not in text


def test_audience_without_consent_is_cancelled(store: Store, tmp_path: Path) -> None:
    store.upsert([customer("9", consent="unsubscribed")])
    report = apply(
        [nudge("9")], store, [AdAudience("m.csv", root=tmp_path, platform="meta")], now=NOW
    )
    assert report.cancelled == 1


def test_two_sinks_on_one_file_never_write_a_key_twice(store: Store, tmp_path: Path) -> None:
    # Two workers, each with its own sink on the shared file: what one wrote after the
    # other read the file must not be written again (a job retried after a kill).
    from shopsync.sinks import DeliveryContext

    first, second = (JsonLines("out/actions.jsonl", root=tmp_path) for _ in range(2))
    context = DeliveryContext(store=store, customer=None, now=NOW)
    assert first.deliver(nudge("1"), context)["written"] is True  # first reads the file
    assert second.deliver(nudge("2"), context)["written"] is True
    assert first.deliver(nudge("2"), context)["written"] is False
    lines = (tmp_path / "out" / "actions.jsonl").read_text().splitlines()
    keys = [json.loads(line)["idempotency_key"] for line in lines]
    assert len(keys) == len(set(keys)) == 2


def test_an_apply_for_one_shop_delivers_none_of_another_shops_rows(
    store: Store, tmp_path: Path
) -> None:
    """Sinks are named by kind (``jsonl``), so every shop's file sink has the same name. A
    worker's apply job for shop B delivered shop A's pending rows into B's file (found by the
    worker chaos test): ``shops=`` keeps a run to its own shops' rows."""
    a, b = "a.myshopify.com", "b.myshopify.com"
    store.upsert([customer("1", shop=a), customer("2", shop=b)])
    file_a, file_b = (JsonLines(f"out/{s}.jsonl", root=tmp_path) for s in ("a", "b"))
    # shop A's run recorded its row and died before delivering it
    apply([nudge("1", shop=a)], store, [file_a], now=NOW - dt.timedelta(days=1))
    store_rows = list_outbox(store, shop=a)
    assert [r.status for r in store_rows] == ["pending"]

    report = apply([nudge("2", shop=b)], store, [file_b], now=NOW, shops=[("shopify", b)])
    assert report.delivered == 1
    written_b = (tmp_path / "out" / "b.jsonl").read_text().splitlines()
    assert [json.loads(line)["shop"] for line in written_b] == [b]
    assert [r.status for r in list_outbox(store, shop=a)] == ["pending"]

    apply(None, store, [file_a], now=NOW, shops=[("shopify", a)])
    written_a = (tmp_path / "out" / "a.jsonl").read_text().splitlines()
    assert [json.loads(line)["shop"] for line in written_a] == [a]

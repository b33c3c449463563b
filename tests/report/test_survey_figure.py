"""The report's customer satisfaction panel: NPS per month of the answers given by as_of,
with its interval, from the store's survey answers."""

from __future__ import annotations

from shopsync.core.policy import Policy
from shopsync.planning import plan
from shopsync.report import render
from shopsync.report.figures import shop_figures
from shopsync.store import Store
from shopsync.surveys import answer, scores
from tests.core.retention_helpers import DAY, T0, P, S, customer, order

AS_OF = T0 + 90 * DAY  # 2024-05-30 12:00 UTC


def test_the_panel_shows_nps_per_month_by_as_of(store: Store) -> None:
    store.upsert([customer(c) for c in "abcd"])
    store.upsert([order(f"{c}1", c, T0 - 10 * DAY, lines=[("p", 1, "10")]) for c in "abcd"])
    given = [("a", 10, T0 + 40 * DAY), ("b", 3, T0 + 45 * DAY), ("c", 9, T0 + 70 * DAY)]
    given.append(("d", 0, AS_OF + DAY))  # after as_of: not in the report
    for cid, score, at in given:
        survey = {
            "platform": P,
            "shop": S,
            "customer_id": cid,
            "order_id": f"{cid}1",
            "scale": "nps",
            "survey_key": f"survey_request:{S}:{cid}1",
        }
        assert answer(store, survey, score, now=at)[0] == "recorded"
    empty = plan(store, Policy(), AS_OF - 1000 * DAY)
    f = shop_figures(store, P, S, as_of=AS_OF, planned=empty, lift_plans=1)
    assert [(s.group, s.n, s.value) for s in f.surveys] == [
        ("2024-04", 2, 0.0),
        ("2024-05", 1, 100.0),
    ]
    assert list(f.surveys) == scores(store, P, S, until=AS_OF)
    # a, b, c first ordered in February 2024 (the answer after as_of is left out)
    assert [(c.group, c.n) for c in f.survey_cohorts] == [("2024-02", 3)]
    html = render([f], AS_OF)
    assert "first order in" in html and "2024-02" in html
    assert (
        'id="shop1-surveys"' in html and "2024-04 · 2" in html and "No survey answers" not in html
    )

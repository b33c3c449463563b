"""A simulated shop served by a process of its own, driven over a pipe.

The demo syncs its shops from child processes (:mod:`shopsync.testing.process`: the
emulator renders JSON on one core while the sync stores on the other), so the
:class:`~shopsync.testing.simulation.Simulation` that carries the shop's customers on must
live in the child too, beside the shop's state. :class:`RemoteSimulation` sends it what
shopsync delivered (:meth:`RemoteSimulation.receive`), moves its clock
(:meth:`RemoteSimulation.advance`), has its storefront post its browse events to an event
endpoint (:meth:`RemoteSimulation.browse`) and brings its
:class:`~shopsync.testing.simulation.Truth` back. Messages reach the customers only through
:meth:`~RemoteSimulation.receive`: no SMTP inbox (aiosmtpd is a test dependency) and no scan
of the platform's codes, so each code is counted once, under the program that sent it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import multiprocessing as mp
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from multiprocessing.connection import Connection
from typing import Any

from shopsync.errors import ConfigurationError
from shopsync.models import Money
from shopsync.testing._browsing import Posted
from shopsync.testing.process import RemoteShop, _answer
from shopsync.testing.simulation import Truth, Uplift

__all__ = ["Message", "RemoteSimulation", "simulate_in_processes"]


@dataclass(frozen=True)
class Message:
    """One delivered action, as the simulated customer reads it."""

    customer_id: str
    program: str
    key: str
    """The action's idempotency key: the same message delivered twice is read once."""
    code: str | None = None
    value: Money | None = None
    percent: Decimal | None = None


def _serve(
    platform: str, options: dict[str, Any], simulation: dict[str, Any], conn: Connection
) -> None:
    from shopsync.testing import emulate
    from shopsync.testing._browsing import browse_bodies, post_bodies
    from shopsync.testing._checkouts import add_checkouts
    from shopsync.testing.simulation import Simulation

    options = dict(options)
    checkouts = bool(options.pop("checkouts", False))  # issue 22: abandoned checkouts too
    seed = int(options.get("seed", 1))
    try:
        with emulate(platform, **options) as shop:
            sim = Simulation(shop.state, **simulation)
            began = sim.now
            if checkouts:
                add_checkouts(shop.state, seed=seed, now=sim.now)
            conn.send(
                (
                    RemoteShop(
                        platform=platform,
                        url=shop.url,
                        shop=shop.state.shop,
                        settings=dict(shop.settings),
                        customers=len(shop.state.customers),
                        orders=len(shop.state.orders),
                    ),
                    sim.now,
                )
            )
            while True:
                command, argument = conn.recv()
                if command == "receive":
                    with shop.state.lock:
                        for m in argument:
                            sim.receive(
                                m.customer_id,
                                m.program,
                                code=m.code,
                                value=m.value,
                                percent=m.percent,
                                key=m.key,
                            )
                    conn.send(sim.now)
                elif command == "advance":
                    with shop.state.lock:
                        sim.advance(days=argument)
                        if checkouts and argument:
                            seed += 1  # the period's own draws
                            add_checkouts(shop.state, seed=seed, now=sim.now, days=argument)
                    conn.send(sim.now)
                elif command == "browse":  # issue 22: the storefront's relay posts its carts
                    url, secret, days = argument
                    with shop.state.lock:
                        now = sim.now
                        # one stream per window, by its day in the simulation (a run on
                        # another date draws the same): the same window posted again is the
                        # same events (a replay), another window other ones
                        window = int(options.get("seed", 1)) * 100_000 + (now - began).days
                        bodies = browse_bodies(shop.state, seed=window, now=now, days=days)
                    conn.send(post_bodies(bodies, url, secret))
                elif command == "truth":
                    conn.send(sim.truth)
                else:
                    return
    except EOFError:
        pass
    except Exception as exc:  # the parent must hear about it, not wait forever
        with contextlib.suppress(OSError):
            conn.send(ConfigurationError(f"simulated {platform} shop failed: {exc}"))


class RemoteSimulation:
    """A served shop and the simulation that advances it, in a child process."""

    def __init__(self, shop: RemoteShop, now: dt.datetime, conn: Connection) -> None:
        self.shop = shop
        self.now = now
        self._conn = conn

    def _call(self, command: str, argument: Any = None) -> Any:
        self._conn.send((command, argument))
        answer = self._conn.recv()
        if isinstance(answer, Exception):
            raise answer
        return answer

    def receive(self, messages: Sequence[Message]) -> None:
        """These messages reach their customers now."""
        self.now = self._call("receive", list(messages))

    def advance(self, days: int) -> dt.datetime:
        """Let the customers live ``days`` days; returns the simulated time."""
        self.now = self._call("advance", days)
        return self.now

    def truth(self) -> Truth:
        return self._call("truth")  # type: ignore[no-any-return]

    def browse(self, url: str, secret: str, *, days: int = 7) -> Posted:
        """The shop's storefront posts the carts of its last ``days`` days (views and adds
        to cart, :func:`shopsync.testing._browsing.browse_bodies`) to the event endpoint at
        ``url``, signed with ``secret``, as its pixel relay would."""
        return self._call("browse", (url, secret, days))  # type: ignore[no-any-return]


@contextmanager
def simulate_in_processes(
    shops: Mapping[str, dict[str, Any]],
    *,
    uplift: Mapping[str, Uplift],
    seed: int = 1,
) -> Iterator[dict[str, RemoteSimulation]]:
    """Several shops (platform: :func:`shopsync.testing.emulate` options with ``buying=``),
    each served and simulated by a child process; the children generate side by side."""
    context = mp.get_context("spawn")
    children: dict[str, tuple[Any, Connection]] = {}
    simulation = {"uplift": dict(uplift), "seed": seed}
    try:
        for platform, options in shops.items():
            parent, child = context.Pipe()
            process = context.Process(
                target=_serve, args=(platform, dict(options), simulation, child), daemon=True
            )
            process.start()
            child.close()
            children[platform] = (process, parent)
        found: dict[str, RemoteSimulation] = {}
        for platform, (_, parent) in children.items():
            answer: tuple[RemoteShop, dt.datetime] = _answer(platform, parent)  # type: ignore[assignment]
            found[platform] = RemoteSimulation(*answer, parent)
        yield found
    finally:
        for _, parent in children.values():
            with contextlib.suppress(OSError):
                parent.send(("stop", None))
            parent.close()
        for process, _ in children.values():
            process.join(timeout=10)
            if process.is_alive():
                process.kill()

"""The store owns every byte of SQL (issue 18, item 1): the layering is checked, not hoped for.

Outside ``src/shopsync/store/`` no module imports SQLAlchemy (at module level or inside a
function, or by looking it up in ``sys.modules``) and none imports a table from
``shopsync.store.schema``: a caller asks a store function for what it needs and never builds
the query itself. The check reads the syntax trees, so it costs milliseconds.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "shopsync"
STORE = PACKAGE / "store"
ADAPTERS = ROOT / "adapters"


def _layers() -> ModuleType:
    """benchmarks/layers.py, the measurement the closing note of issue 18 quotes."""
    spec = importlib.util.spec_from_file_location("_layers", ROOT / "benchmarks" / "layers.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and annotations look the module up
    spec.loader.exec_module(module)
    return module


def _outside_store() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if STORE not in p.parents)


def _offenders(
    paths: list[Path], check: Callable[[ast.AST, Path], list[int]], root: Path = PACKAGE
) -> dict[str, list[int]]:
    """``module: lines`` of every module in ``paths`` where ``check(tree, path)`` finds any."""
    return {
        str(path.relative_to(root)): lines
        for path in paths
        if (lines := check(ast.parse(path.read_text(), filename=str(path)), path))
    }


def _sqlalchemy_uses(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names = [node.module or ""]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names = [node.value]  # sys.modules.get("sqlalchemy.exc"), importlib.import_module
        else:
            continue
        if any(name == "sqlalchemy" or name.startswith("sqlalchemy.") for name in names):
            lines.append(node.lineno)
    return lines


def _tables_imported(tree: ast.AST) -> list[int]:
    """Lines importing a table (not an upper-case constant such as MONEY_SCALE) of the schema."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "shopsync.store.schema":
            if any(not alias.name.isupper() for alias in node.names):
                lines.append(node.lineno)
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module == "shopsync.store"
            and any(alias.name == "schema" for alias in node.names)
        ):
            lines.append(node.lineno)
    return lines


def test_no_module_outside_the_store_uses_sqlalchemy() -> None:
    found = _offenders(_outside_store(), lambda tree, _: _sqlalchemy_uses(tree))
    assert found == {}, f"SQLAlchemy outside src/shopsync/store/ (module: lines): {found}"


def test_no_module_outside_the_store_imports_a_table() -> None:
    found = _offenders(_outside_store(), lambda tree, _: _tables_imported(tree))
    assert found == {}, f"store tables imported outside src/shopsync/store/: {found}"


def test_the_check_sees_every_form_of_use() -> None:
    """The checks above would pass vacuously if they missed an import form."""
    source = (
        "import sqlalchemy\n"
        "from sqlalchemy.exc import IntegrityError\n"
        "def f():\n"
        "    from sqlalchemy import select\n"
        "import sys\n"
        "sa = sys.modules.get('sqlalchemy.exc')\n"
        "from shopsync.store.schema import outbox, MONEY_SCALE\n"
        "from shopsync.store.schema import MONEY_SCALE\n"
    )
    tree = ast.parse(source)
    assert _sqlalchemy_uses(tree) == [1, 2, 4, 6]
    assert _tables_imported(tree) == [7]
    assert len(_outside_store()) > 50 and not any(STORE in p.parents for p in _outside_store())


def _private_store_uses(tree: ast.AST, module: str) -> list[int]:
    """Lines that reach a private store module (``shopsync.store._x``) from ``module``: an
    import in any form (relative ones resolved), a dotted attribute, or the name in a string
    (``importlib.import_module("shopsync.store._engine")``)."""

    def private(name: str) -> bool:
        parts = name.split(".")
        return parts[:2] == ["shopsync", "store"] and len(parts) > 2 and parts[2].startswith("_")

    def dotted(node: ast.AST) -> str:
        if isinstance(node, ast.Attribute):
            return f"{dotted(node.value)}.{node.attr}"
        return node.id if isinstance(node, ast.Name) else ""

    lines = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".")[: -node.level]
                base = ".".join([*package, base] if base else package)
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Attribute):
            names = [dotted(node)]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names = [node.value]
        if any(private(name) for name in names):
            lines.append(node.lineno)
    return sorted(set(lines))


def _module_of(path: Path) -> str:
    root = PACKAGE.parent if PACKAGE in path.parents else ADAPTERS
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts)  # a package's __init__ keeps its name: a relative import goes up one


def test_no_module_outside_the_store_imports_a_private_store_module() -> None:
    """The store's public modules (``store.leases``, ``store.times``, ``store.ledger``...) are
    what the rest of shopsync and the adapters may use; ``store._x`` may change freely."""
    paths = _outside_store() + sorted(ADAPTERS.rglob("*.py"))
    found = _offenders(
        paths, lambda tree, path: _private_store_uses(tree, _module_of(path)), root=ROOT
    )
    assert found == {}, f"private store modules used outside src/shopsync/store/: {found}"


def test_the_private_store_check_sees_every_form_of_use() -> None:
    source = (
        "from shopsync.store import Store, _rows\n"
        "from shopsync.store._engine import Lease\n"
        "import shopsync.store._privacy\n"
        "def f():\n"
        "    from ..store import _consent\n"
        "    return shopsync.store._rows.to_micros\n"
        "m = importlib.import_module('shopsync.store._engine')\n"
        "from shopsync.store import Store, times\n"
        "from shopsync.store.leases import Lease\n"
        "from .store import ledger\n"
    )
    module = "shopsync.loyalty._derivation"  # ``..store`` is shopsync.store from here
    assert _private_store_uses(ast.parse(source), module) == [1, 2, 3, 5, 6, 7]


def test_no_sql_text_outside_the_store() -> None:
    """Raw SQL in strings (``text("SELECT ...")``, a WHERE fragment) is building SQL too."""
    figures = _layers().measure()
    assert figures["sql_lines_by_module"] == {}, figures["sql_lines_by_module"]
    assert figures["sqlalchemy_importers_outside_store"] == []


def test_the_sql_count_sees_sql_in_strings_and_calls() -> None:
    layers = _layers()
    source = (
        "def f(conn, sid):\n"
        '    """SELECT id FROM a docstring is prose."""\n'
        "    where = f'shop_id = {sid} AND created_at <= 5'\n"
        "    rows = conn.execute(\n"
        "        q\n"
        "    )\n"
        "    message = 'the shop was not found'\n"
        "    return 'SELECT id FROM orders'\n"
    )
    assert layers.sql_lines(ast.parse(source)) == {3, 4, 5, 6, 8}


_MUTATORS = {
    "append",
    "add",
    "clear",
    "discard",
    "extend",
    "insert",
    "move_to_end",
    "pop",
    "popitem",
    "remove",
    "setdefault",
    "update",
}


def _module_state_writes(tree: ast.Module) -> list[int]:
    """Lines that change module-level state: a ``global`` statement, or a module-level name
    written through (``NAME[k] = v``, ``del NAME[k]``, ``NAME.update(...)``, ``NAME.x = v``)."""
    names = set()
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign):
            targets = [node.target]
        names |= {t.id for t in targets if isinstance(t, ast.Name)}

    def through(node: ast.AST) -> bool:
        return isinstance(node, (ast.Subscript, ast.Attribute)) and (
            isinstance(node.value, ast.Name) and node.value.id in names
        )

    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Global):
            lines.append(node.lineno)
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
            targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
            if any(through(t) for t in targets):
                lines.append(node.lineno)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in _MUTATORS
            and through(node.func)
        ):
            lines.append(node.lineno)
    return sorted(lines)


def test_the_core_keeps_no_module_level_state() -> None:
    """A module-level cache in the core outlives the store it describes (``id(store)`` keys
    are reused by new objects): state belongs to an object, such as :attr:`Store.memo`."""
    found = _offenders(_core_modules(), lambda tree, _: _module_state_writes(tree))
    assert found == {}, f"module-level state written in shopsync.core (module: lines): {found}"


def test_the_state_check_sees_every_form_of_write() -> None:
    source = (
        "_CACHE = {}\n"
        "TABLE = {'a': 1}\n"
        "def f(key, local):\n"
        "    _CACHE[key] = 1\n"
        "    _CACHE.setdefault(key, 2)\n"
        "    del _CACHE[key]\n"
        "    global COUNT\n"
        "    local[key] = TABLE['a']\n"
        "    TABLE.get(key)\n"
        "    _CACHE.hits += 1\n"
    )
    assert _module_state_writes(ast.parse(source)) == [4, 5, 6, 7, 10]


# -- the core is pure (issue 18, item 2) ---------------------------------------------------------

CORE = PACKAGE / "core"
_IMPURE = (
    "shopsync.store",
    "shopsync.loyalty",
    "shopsync.outbox",
    "shopsync.sync",
    "shopsync.http",
    "shopsync.sinks",
    "shopsync.webhooks",
    "sqlalchemy",
    "requests",
    "httpx",
    "urllib.request",
    "http.client",
    "socket",
    "sqlite3",
    "psycopg",
    "shutil",
    "subprocess",
)
"""What the core may not import: the store, the service layer above it, and I/O."""


def _impure_imports(tree: ast.AST, module: str) -> list[str]:
    """``line: name`` of every import (module level or in a function, relative ones resolved,
    or ``from shopsync import store``) that reaches one of :data:`_IMPURE`."""

    def impure(name: str) -> bool:
        return any(name == bad or name.startswith(bad + ".") for bad in _IMPURE)

    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".")[: -node.level]
                base = ".".join([*package, base] if base else package)
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        found += [(node.lineno, name) for name in names if impure(name)][:1]
    return [f"{line}: {name}" for line, name in sorted(found)]


def _store_parameters(tree: ast.AST) -> list[str]:
    """``line: function(parameter)`` of every parameter annotated with a ``Store``."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        a = node.args
        for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg]:
            if arg is None or arg.annotation is None:
                continue
            names = {
                n.id if isinstance(n, ast.Name) else n.attr
                for n in ast.walk(arg.annotation)
                if isinstance(n, (ast.Name, ast.Attribute))
            }
            text = ast.unparse(arg.annotation)  # "Store | None" written as a string
            if "Store" in names or any(w == "Store" for w in text.replace("'", " ").split()):
                found.append((node.lineno, f"{node.name}({arg.arg})"))
    return [f"{line}: {name}" for line, name in sorted(found)]


def _core_modules() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def test_the_core_imports_neither_the_store_nor_the_service_layer_nor_io() -> None:
    """``shopsync.core`` takes frames, a policy and ``as_of`` and returns a plan: reading the
    store and writing the ledger are the facade's (:mod:`shopsync.planning`)."""
    found = _offenders(_core_modules(), lambda tree, path: _impure_imports(tree, _module_of(path)))
    assert found == {}, f"shopsync.core imports the store, the service layer or I/O: {found}"


def test_no_core_function_takes_a_store() -> None:
    found = _offenders(_core_modules(), lambda tree, _: _store_parameters(tree))
    assert found == {}, f"shopsync.core functions that take a Store: {found}"


def test_the_purity_checks_see_every_form() -> None:
    source = (
        "from shopsync.store.read import read_shop\n"
        "from shopsync.store import times\n"
        "def f(store: Store, other: 'Store | None', n: int) -> None:\n"
        "    from shopsync import loyalty\n"
        "    from ..outbox import apply\n"
        "    import sqlalchemy.exc\n"
        "from shopsync.core.policy import Policy\n"
        "from .. import store\n"
        "def g(s: shopsync.store.Store, *, p: Policy) -> None: ...\n"
        "import requests, socket\n"
    )
    tree = ast.parse(source)
    assert _impure_imports(tree, "shopsync.core.planner") == [
        "1: shopsync.store.read",
        "2: shopsync.store",
        "4: shopsync.loyalty",
        "5: shopsync.outbox",
        "6: sqlalchemy.exc",
        "8: shopsync.store",
        "10: requests",
    ]
    assert _store_parameters(tree) == ["3: f(other)", "3: f(store)", "9: g(s)"]
    assert len(_core_modules()) > 15


CORE_MODULE_LIMIT = 600


def _long_modules(folder: Path, limit: int = CORE_MODULE_LIMIT) -> dict[str, int]:
    """``module: lines`` of every module under ``folder`` longer than ``limit`` lines."""
    return {
        str(path.relative_to(folder)): count
        for path in sorted(folder.rglob("*.py"))
        if (count := len(path.read_text().splitlines())) > limit
    }


def test_core_modules_stay_under_600_lines() -> None:
    """One module per thing held (records, referrals, tiers, policy sections...): a 900-line
    module of rules is where a change goes unreviewed (issue 18)."""
    found = _long_modules(CORE)
    assert found == {}, f"modules of shopsync.core over {CORE_MODULE_LIMIT} lines: {found}"


def test_the_size_check_counts_lines(tmp_path: Path) -> None:
    (tmp_path / "short.py").write_text("x = 1\n" * 3)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "long.py").write_text("x = 1\n" * 4)
    assert _long_modules(tmp_path, limit=3) == {str(Path("sub") / "long.py"): 4}

"""The layering figures of issue 18: SQL lines outside ``store/`` and the module import graph.

Not a speed benchmark: a measurement of the code, re-runnable before and after a refactoring.

*SQL lines* are counted from the syntax tree of every module of ``src/shopsync`` outside
``store/``: a physical line counts when it lies in a simple statement (an assignment, a call,
a return, an import...) that names something imported from ``sqlalchemy`` or from
``shopsync.store.schema`` (the tables), calls ``.execute``/``.exec_driver_sql``/``.scalar``/
``.scalars`` on a connection, or holds a string literal that reads as SQL (``SELECT ... FROM``,
``INSERT INTO``, ``WHERE``, ``CASE WHEN``, ``x = :param``, ``a AND b``...: upper-case keywords,
as this code base writes SQL). Each line counts once; docstrings do not count.

The *import graph* has one node per subpackage (``core``, ``store``, ``sinks``, ...) and one
per top-level module, plus ``sqlalchemy``; an edge A -> B means some module of A imports B
(at module level or inside a function). Private store modules (``store._x``) are listed with
their importers outside ``store/``.

    python benchmarks/layers.py            # a readable summary
    python benchmarks/layers.py --json     # the same as JSON
"""

from __future__ import annotations

import ast
import json
import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "shopsync"
_SQL_TEXT = re.compile(  # upper-case keywords, as this code base writes SQL; prose rarely does
    r"SELECT\b.*\bFROM|INSERT INTO|UPDATE \w+ SET|DELETE FROM|CREATE (TABLE|INDEX)|PRAGMA "
    r"|COPY \(|COALESCE\(|NULLIF\(|CASE WHEN|\bifnull\(|group_concat\(|\bWHERE |\w+ IN \("
    r"|\w+ = :\w+|\w+ (AND|OR) \w+",
    re.DOTALL,
)
_RUNNERS = {"execute", "exec_driver_sql", "scalar", "scalars", "execution_options"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def node_of(module: str) -> str:
    """The graph node of a module: its subpackage, or itself when it is a top-level module."""
    if module == "sqlalchemy" or module.startswith("sqlalchemy."):
        return "sqlalchemy"
    parts = module.split(".")
    if parts[0] != "shopsync":
        return parts[0]
    if len(parts) == 1:
        return "shopsync"
    if (PACKAGE / parts[1]).is_dir():
        return f"shopsync.{parts[1]}"
    return f"shopsync.{parts[1]}"  # a top-level module, or a name imported from it


def _sources() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts)


def _imports(tree: ast.AST, module: str, is_package: bool) -> list[str]:
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                keep = len(base) - node.level + (1 if is_package else 0)
                prefix = ".".join(base[:keep])
                target = f"{prefix}.{node.module}" if node.module else prefix
            else:
                target = node.module or ""
            found.append(target)
            # ``from shopsync.store import _rows`` imports the submodule _rows (a module or a
            # subpackage: ``from shopsync import loyalty``).
            folder = PACKAGE.parent / target.replace(".", "/")
            found.extend(
                f"{target}.{alias.name}"
                for alias in node.names
                if (folder / f"{alias.name}.py").exists()
                or (folder / alias.name / "__init__.py").exists()
            )
    return found


def _sql_names(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            if node.module.startswith("sqlalchemy") or node.module == "shopsync.store.schema":
                # Upper-case names (MONEY_SCALE) are plain constants, not tables or SQL.
                names.update(
                    alias.asname or alias.name for alias in node.names if not alias.name.isupper()
                )
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("sqlalchemy"):
                    names.add((alias.asname or alias.name).split(".")[0])
    return names


def _is_sql(statement: ast.stmt, names: set[str]) -> bool:
    for node in ast.walk(statement):
        if isinstance(node, ast.Name) and node.id in names:
            return True
        if isinstance(node, ast.Attribute) and node.attr in _RUNNERS:
            return True
        if isinstance(node, ast.Import) and any(
            a.name.startswith("sqlalchemy") for a in node.names
        ):
            return True
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            if node.module.startswith("sqlalchemy"):
                return True
            # a table of the schema, not a plain constant such as MONEY_SCALE
            if node.module == "shopsync.store.schema" and any(
                not a.name.isupper() for a in node.names
            ):
                return True
        if isinstance(node, ast.JoinedStr):
            # each {placeholder} read as a name: f"shop_id = {sid} AND ..." -> "shop_id = x AND"
            literal = "".join(
                str(part.value) if isinstance(part, ast.Constant) else "x" for part in node.values
            )
            if _SQL_TEXT.search(literal):
                return True
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and _SQL_TEXT.search(node.value)
        ):
            return True
    return False


def _is_docstring(statement: ast.stmt) -> bool:
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and isinstance(statement.value.value, str)
    )


def sql_lines(tree: ast.Module) -> set[int]:
    """The physical lines of the simple statements that build or run SQL."""
    names = _sql_names(tree)
    lines: set[int] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.stmt) or hasattr(node, "body") or _is_docstring(node):
            continue  # compound statements are judged by their simple statements
        if _is_sql(node, names):
            lines.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    # The headers of compound statements (``with engine.begin() as conn:``, ``for row in
    # conn.execute(...)``) count too: only the header, not the body.
    for node in ast.walk(tree):
        header: list[ast.expr] = []
        if not isinstance(node, ast.stmt):
            continue
        if isinstance(node, (ast.With, ast.AsyncWith)):
            header = [item.context_expr for item in node.items]
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            header = [node.iter]
        elif isinstance(node, (ast.If, ast.While)):
            header = [node.test]
        for expression in header:
            if _is_sql(ast.Expr(value=expression), names):
                end = expression.end_lineno or node.lineno
                lines.update(range(node.lineno, end + 1))
    return lines


def measure() -> dict[str, Any]:
    edges: dict[str, set[str]] = defaultdict(set)
    private_store: dict[str, set[str]] = defaultdict(set)
    sql: dict[str, int] = {}
    sqlalchemy_importers: list[str] = []
    for path in _sources():
        module = module_name(path)
        tree = ast.parse(path.read_text(), filename=str(path))
        source = node_of(module)
        in_store = module == "shopsync.store" or module.startswith("shopsync.store.")
        for target in _imports(tree, module, path.name == "__init__.py"):
            if not (target.startswith("shopsync") or target.startswith("sqlalchemy")):
                continue
            destination = node_of(target)
            if destination != source:
                edges[source].add(destination)
            if destination == "sqlalchemy" and not in_store:
                sqlalchemy_importers.append(module)
            last = target.split(".")[-1]
            if target.startswith("shopsync.store.") and last.startswith("_") and not in_store:
                private_store[target].add(module)
        if not in_store:
            count = len(sql_lines(tree))
            if count:
                sql[module] = count
    return {
        "sql_lines_outside_store": sum(sql.values()),
        "sql_lines_by_module": dict(sorted(sql.items(), key=lambda kv: -kv[1])),
        "sqlalchemy_importers_outside_store": sorted(set(sqlalchemy_importers)),
        "private_store_importers": {k: sorted(v) for k, v in sorted(private_store.items())},
        "graph": {k: sorted(v) for k, v in sorted(edges.items())},
    }


def main() -> None:
    figures = measure()
    if "--json" in sys.argv:
        print(json.dumps(figures, indent=2))
        return
    print(f"SQL lines outside store/: {figures['sql_lines_outside_store']}")
    for module, count in figures["sql_lines_by_module"].items():
        print(f"  {count:5d}  {module}")
    print("modules outside store/ importing sqlalchemy:")
    for module in figures["sqlalchemy_importers_outside_store"]:
        print(f"  {module}")
    print("private store modules imported from outside store/:")
    for target, importers in figures["private_store_importers"].items():
        print(f"  {target} <- {', '.join(importers)}")
    print("import graph (A -> what A imports):")
    for source, targets in figures["graph"].items():
        print(f"  {source} -> {', '.join(targets)}")


if __name__ == "__main__":
    main()

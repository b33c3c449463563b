"""The documentation pages rendered from code: the policy reference and the CLI reference.

Both pages describe something the code already states (the :class:`~shopsync.Policy` model,
the typer app), so they are generated from it and cannot drift: ``tests/test_docs.py``
compares the committed pages with what this module renders. After changing the policy model
or the command line, regenerate them from the repository root::

    python -m shopsync._docs            # rewrite docs/policy.md and docs/cli.md
    python -m shopsync._docs --check    # exit 1 and name the stale pages instead
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import inspect
import itertools
import sys
import textwrap
import types
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

__all__ = ["PAGES", "cli_page", "main", "policy_page", "stale_pages"]

# ------------------------------------------------------------------------- policy page

_SCALARS = {bool: "boolean", int: "integer", str: "string", Decimal: "decimal", dt.date: "date"}

_POLICY_INTRO = """\
# Policy reference

<!-- Generated from shopsync.core.policy.Policy by `python -m shopsync._docs`; do not edit. -->

`shopsync.Policy` holds the settings of every retention program. Write the keys you want to
change in a TOML file and load it with `Policy.from_toml("retention.toml")` (or pass
`--policy retention.toml` to `shopsync plan` and `shopsync apply`); every key left out keeps
the default below. The key column gives each setting's full TOML path: `winback.min_days` is
`min_days` in the `[winback]` table.

- Unknown keys are errors (a typo must not fall back to a default silently), and every error
  names the dotted key at fault: `PolicyError: invalid policy: winback.min_days: ...`.
- Decimal settings (money thresholds, multipliers, shares) take a TOML number or a string;
  `1.5` means the decimal 1.5, never its binary neighbour.
- A default shown as *none* means unset. TOML has no null, so such a key can only be left
  out; `Policy.from_dict` (JSON, Python) takes `None`.
- Sources: each default names the vendor documentation or research it follows, as summarised
  in the project's retention research (§2 loyalty, §8 chosen defaults); `[derived]` marks a
  shopsync choice built from those anchors rather than one vendor's default.

Example:

```toml
currency = "EUR"

[loyalty.earn]
points_per_unit = 3
pending_days = 30

[[loyalty.tiers.tiers]]
name = "Member"
threshold = 0

[[loyalty.tiers.tiers]]
name = "VIP"
threshold = 400
multiplier = "1.5"

[winback]
min_days = 45
discount_percent = 15

[quiet]
hours = [21, 8]
timezone = "Europe/Berlin"

[[quiet.periods]]
start = 2025-12-24
end = 2025-12-26
name = "Christmas"
```
"""


def _attribute_docs(model: type[BaseModel]) -> dict[str, str]:
    """Docstrings written under fields (``name: str`` then ``\"\"\"...\"\"\"``)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(model)))
    except (OSError, TypeError):  # pragma: no cover - source always ships with shopsync
        return {}
    docs: dict[str, str] = {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    for node, after in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def _type_text(annotation: Any) -> str:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType):
        kept = [a for a in args if a is not type(None)]
        text = " or ".join(_type_text(a) for a in kept)
        return f"{text} or none" if len(kept) < len(args) else text
    if origin is Literal:
        return "one of " + ", ".join(f'`"{v}"`' for v in args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            item = args[0]
            if isinstance(item, type) and issubclass(item, BaseModel):
                return "array of tables"
            return f"array of {_type_text(item)}s"
        return f"array of {len(args)} " + ", ".join(_type_text(a) for a in args) + "s"
    if origin is dict:
        return f"table of {_type_text(args[1])}s by {_type_text(args[0])}"
    if annotation in _SCALARS:
        return _SCALARS[annotation]
    return getattr(annotation, "__name__", str(annotation))  # pragma: no cover


def _constraints(info: FieldInfo) -> list[str]:
    out = []
    for meta in info.metadata:
        for attr, sign in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
            if getattr(meta, attr, None) is not None:
                out.append(f"{sign} {getattr(meta, attr)}")
        if getattr(meta, "min_length", None) is not None:
            out.append(f"length ≥ {meta.min_length}")
        if getattr(meta, "max_length", None) is not None:
            out.append(f"length ≤ {meta.max_length}")
        if getattr(meta, "pattern", None):
            out.append(f"matching `{meta.pattern}`")
    return out


def _toml(value: Any) -> str:
    if value is None:
        return "*none*"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, (tuple, list)):
        if value and isinstance(value[0], BaseModel):
            return "see below"
        return "`[" + ", ".join(_toml(v).strip("`") for v in value) + "]`"
    if isinstance(value, dict):
        return "`{" + ", ".join(f"{k} = {_toml(v).strip('`')}" for k, v in value.items()) + "}`"
    if isinstance(value, str):
        return f'`"{value}"`'
    return f"`{value}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _row(key: str, info: FieldInfo, description: str) -> str:
    kind = ", ".join([_type_text(info.annotation), *_constraints(info)])
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    source = str(extra.get("source", ""))
    default = "required" if info.is_required() else _toml(info.default)
    return f"| `{key}` | {_cell(kind)} | {default} | {_cell(description)} | {_cell(source)} |"


def _table_rows(
    key: str,
    info: FieldInfo,
    rows: list[str],
    tables: list[tuple[str, FieldInfo, type[BaseModel]]],
) -> None:
    """The rows of an array of tables' fields (and of the arrays of tables inside it)."""
    annotation = info.annotation
    item = get_args(annotation)[0] if get_origin(annotation) is tuple else None
    if not (isinstance(item, type) and issubclass(item, BaseModel)):
        return
    tables.append((key, info, item))
    for sub_name, sub_info in item.model_fields.items():
        sub_doc = sub_info.description or _attribute_docs(item).get(sub_name, "")
        rows.append(_row(f"{key}[].{sub_name}", sub_info, sub_doc))
        _table_rows(f"{key}[].{sub_name}", sub_info, rows, tables)


def _policy_section(model: type[BaseModel], prefix: str, out: list[str]) -> None:
    heading = f"## `[{prefix}]`" if prefix else "## Top level"
    doc = inspect.cleandoc(model.__doc__ or "").strip()
    out += [heading, ""]
    if doc and model.__doc__ is not BaseModel.__doc__:
        out += [doc, ""]
    rows: list[str] = []
    nested: list[tuple[str, type[BaseModel]]] = []
    tables: list[tuple[str, FieldInfo, type[BaseModel]]] = []
    for name, info in model.model_fields.items():
        key = f"{prefix}.{name}" if prefix else name
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            nested.append((key, annotation))
            continue
        rows.append(_row(key, info, info.description or ""))
        _table_rows(key, info, rows, tables)
    if rows:
        out += ["| key | type | default | meaning | source |", "|---|---|---|---|---|", *rows, ""]
    for key, info, item in tables:
        if info.default:
            names = list(item.model_fields)
            out += [f"Default `[[{key.replace('[]', '')}]]`:", ""]
            out += ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
            for entry in info.default:
                out.append("| " + " | ".join(str(getattr(entry, n)) for n in names) + " |")
            out.append("")
    for key, sub in nested:
        _policy_section(sub, key, out)


def policy_page() -> str:
    """``docs/policy.md``: every key of :class:`~shopsync.Policy`, as a TOML path."""
    from shopsync.core.policy import Policy

    out = [_POLICY_INTRO]
    _policy_section(Policy, "", out)
    return "\n".join(out).rstrip() + "\n"


# ---------------------------------------------------------------------------- CLI page

_CLI_INTRO = """\
# CLI reference

<!-- Generated from shopsync.cli.app by `python -m shopsync._docs`; do not edit. -->

The `shopsync` command is installed with the package. Every command takes `--help`. A
failure shopsync anticipates (a bad setting, a refused token, an unknown adapter) prints a
one-paragraph `error:` and exits with status 1; settings written `key=env:NAME` are read from
the environment variable `NAME`, so secrets stay out of shell history and process listings.
"""

_SKIPPED = {"help"}


def _param_type(param: Any, ctx: Any) -> str:
    kind = getattr(param, "type", None)
    if kind is not None and getattr(kind, "name", None):
        text = str(kind.name)
    elif hasattr(param, "display_type"):
        text = str(param.display_type(ctx)).strip("<>")
    else:  # pragma: no cover - every click/typer parameter has one of the two
        text = ""
    if text.startswith("list[") and text.endswith("]"):
        text = text[5:-1]
    return {"str": "text", "bool": "flag", "float": "number", "int": "integer"}.get(text, text)


def _default_text(param: Any) -> str:
    value = param.default
    if getattr(param, "is_flag", False) and getattr(param, "secondary_opts", None):
        return f"`{param.opts[0] if value else param.secondary_opts[0]}`"
    if value is None or value == [] or value == () or getattr(param, "is_flag", False):
        return ""
    return f"`{value}`"


def _usage(path: str, command: Any) -> str:
    pieces = [path]
    if any(p.param_type_name == "option" for p in command.params):
        pieces.append("[OPTIONS]")
    for param in command.params:
        if param.param_type_name != "argument":
            continue
        name = param.name.upper()
        many = param.nargs == -1 or getattr(param, "multiple", False)
        text = f"{name}..." if many else name
        pieces.append(text if param.required else f"[{text}]")
    if hasattr(command, "commands"):
        pieces.append("COMMAND [ARGS]...")
    return " ".join(pieces)


def _cli_command(path: str, command: Any, ctx: Any, out: list[str]) -> None:
    out += [f"## `{path}`", ""]
    if command.help:
        out += [inspect.cleandoc(command.help), ""]
    out += ["```text", _usage(path, command), "```", ""]
    arguments = [p for p in command.params if p.param_type_name == "argument"]
    options = [
        p
        for p in command.params
        if p.param_type_name == "option" and p.name not in _SKIPPED and not p.hidden
    ]
    if arguments:
        out += ["| argument | type | meaning |", "|---|---|---|"]
        for p in arguments:
            need = "" if p.required else " (optional)"
            out.append(
                f"| `{p.name.upper()}` | {_param_type(p, ctx)} | {_cell(p.help or '')}{need} |"
            )
        out.append("")
    if options:
        out += ["| option | type | default | meaning |", "|---|---|---|---|"]
        for p in options:
            names = ", ".join(f"`{o}`" for o in [*p.opts, *p.secondary_opts])
            repeat = " Repeatable." if getattr(p, "multiple", False) else ""
            out.append(
                f"| {names} | {_param_type(p, ctx)} | {_default_text(p)} "
                f"| {_cell(p.help or '')}{repeat} |"
            )
        out.append("")
    if hasattr(command, "commands"):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is None or getattr(sub, "hidden", False):
                continue
            _cli_command(f"{path} {name}", sub, type(ctx)(sub, info_name=name, parent=ctx), out)


def cli_page() -> str:
    """``docs/cli.md``: every command and option of the ``shopsync`` typer app."""
    import typer

    from shopsync.cli import app

    root = typer.main.get_command(app)
    ctx = root.context_class(root, info_name="shopsync")
    out = [_CLI_INTRO]
    _cli_command("shopsync", root, ctx, out)
    return "\n".join(out).rstrip() + "\n"


# -------------------------------------------------------------------------- the command

PAGES: dict[str, Callable[[], str]] = {"policy.md": policy_page, "cli.md": cli_page}
"""Generated pages, by path inside ``docs/``."""


def stale_pages(docs: Path) -> list[str]:
    """The generated pages under ``docs`` whose committed text differs from the code's."""
    stale = []
    for name, render in PAGES.items():
        path = docs / name
        if not path.exists() or path.read_text(encoding="utf-8") != render():
            stale.append(name)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shopsync._docs", description=__doc__)
    parser.add_argument("--docs", type=Path, default=Path("docs"), help="the docs directory")
    parser.add_argument("--check", action="store_true", help="only report stale pages")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_pages(args.docs)
        for name in stale:
            print(f"{args.docs / name} is stale: run python -m shopsync._docs", file=sys.stderr)
        return 1 if stale else 0
    for name, render in PAGES.items():
        (args.docs / name).write_text(render(), encoding="utf-8")
        print(f"wrote {args.docs / name}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

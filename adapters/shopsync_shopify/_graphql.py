"""A small GraphQL executor for the emulator: graphql-core parses and validates against the
schema subset, and a fast projector walks rendered dicts instead of resolver objects.

Cost follows Shopify's published rules: scalars and enums 0, objects 1, a connection 2 plus
its nodes (``first``/``last`` of them when requested, the returned ones when actual), lists
of objects sized by ``first``; a mutation costs 10. Edges, ``pageInfo`` and the money
wrappers' inner objects count as the objects they are.
"""

from __future__ import annotations

import base64
import json
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    build_schema,
    get_named_type,
    get_nullable_type,
    is_abstract_type,
    is_leaf_type,
    is_list_type,
    parse,
    validate,
)
from graphql.execution.values import get_argument_values, get_variable_values

from shopsync_shopify._cost import connection_multiplier

__all__ = [
    "Connection",
    "Executor",
    "Prepared",
    "QueryError",
    "connection_multiplier",
    "index_cursor",
]

MUTATION_COST = 10
DEFAULT_LIST_SIZE = 10
"""Requested size of an object list or connection without ``first``/``last``."""


class QueryError(Exception):
    """A request error rendered as Shopify's ``errors`` array."""

    def __init__(self, message: str, code: str | None = None, **extensions: Any) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.extensions = extensions

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"message": self.message}
        ext = dict(self.extensions)
        if self.code:
            ext = {"code": self.code, **ext}
        if ext:
            out["extensions"] = ext
        return out


@dataclass
class Connection:
    """A root connection page already cut by the resolver (filtering and cursors are the
    resolver's business); nested connections are plain lists cut here."""

    items: Sequence[Any]
    cursors: Sequence[str]
    has_next: bool
    has_previous: bool


def index_cursor(position: int) -> str:
    return base64.b64encode(json.dumps({"i": position}).encode()).decode()


def _index_from_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        return int(json.loads(base64.b64decode(cursor))["i"])
    except (ValueError, KeyError, TypeError):
        raise QueryError(
            f"Invalid cursor for current pagination sort: {cursor!r}", "BAD_REQUEST"
        ) from None


@dataclass
class Prepared:
    document: DocumentNode
    fragments: dict[str, FragmentDefinitionNode]
    operations: dict[str | None, OperationDefinitionNode]

    def operation(self, name: str | None) -> OperationDefinitionNode:
        if name is None:
            if len(self.operations) != 1:
                raise QueryError("An operation name is required when the document has several")
            return next(iter(self.operations.values()))
        found = self.operations.get(name)
        if found is None:
            raise QueryError(f"Unknown operation named {name!r}")
        return found


@dataclass
class _Run:
    variables: dict[str, Any]
    fragments: dict[str, FragmentDefinitionNode]
    cost: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    bulk: list[dict[str, Any] | None] | None = None
    """Bulk mode: nested connections become separate lines carrying ``__parentId``."""
    parents: list[Any] = field(default_factory=list)
    depth: int = 0
    plans: dict[tuple[int, str], list[tuple[Any, ...]]] = field(default_factory=dict)
    """Flattened selections per (selection set, type): a page or a bulk file walks the
    same selection for every record, so it is resolved once."""


_DROP = object()


def _schema_sdl() -> str:
    return files("shopsync_shopify").joinpath("_schema.graphql").read_text(encoding="utf-8")


class Executor:
    """Parse/validate (cached per query text), cost, and execute over rendered dicts."""

    def __init__(self, sdl: str | None = None, cache_size: int = 256) -> None:
        self.schema: GraphQLSchema = build_schema(sdl or _schema_sdl())
        self._cache: OrderedDict[str, Prepared | list[GraphQLError]] = OrderedDict()
        self._cache_size = cache_size

    def prepare(self, query: str) -> Prepared:
        """The parsed document, or :class:`QueryError` listing the validation errors."""
        cached = self._cache.get(query)
        if cached is None:
            try:
                document = parse(query)
            except GraphQLError as exc:
                cached = [exc]
            else:
                errors = validate(self.schema, document)
                if errors:
                    cached = list(errors)
                else:
                    cached = Prepared(
                        document,
                        {
                            d.name.value: d
                            for d in document.definitions
                            if isinstance(d, FragmentDefinitionNode)
                        },
                        {
                            (d.name.value if d.name else None): d
                            for d in document.definitions
                            if isinstance(d, OperationDefinitionNode)
                        },
                    )
            self._cache[query] = cached
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(query)
        if isinstance(cached, list):
            raise _validation_error(cached)
        return cached

    def variables(
        self, operation: OperationDefinitionNode, inputs: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        coerced = get_variable_values(
            self.schema, operation.variable_definitions or (), dict(inputs or {})
        )
        if isinstance(coerced, list):
            raise _validation_error(coerced)
        return coerced

    def root_type(self, operation: OperationDefinitionNode) -> GraphQLObjectType:
        root = (
            self.schema.mutation_type
            if operation.operation.value == "mutation"
            else self.schema.query_type
        )
        assert root is not None
        return root

    # ------------------------------------------------------------------ cost

    def requested_cost(
        self, prepared: Prepared, operation: OperationDefinitionNode, variables: dict[str, Any]
    ) -> int:
        if operation.operation.value == "mutation":
            return MUTATION_COST
        run = _Run(variables, prepared.fragments)
        return self._selection_cost(operation.selection_set, self.root_type(operation), run)

    def _selection_cost(
        self, selection_set: SelectionSetNode | None, parent: GraphQLNamedType, run: _Run
    ) -> int:
        if selection_set is None:
            return 0
        total = 0
        by_type: dict[str, int] = {}
        for node, owner in self._fields(selection_set, parent, run, None):
            cost = self._field_cost(node, owner, run)
            if owner is parent:
                total += cost
            else:  # fragments on concrete types of an interface: the most expensive wins
                by_type[owner.name] = by_type.get(owner.name, 0) + cost
        return total + (max(by_type.values()) if by_type else 0)

    def _field_cost(self, node: FieldNode, owner: GraphQLNamedType, run: _Run) -> int:
        name = node.name.value
        if name == "__typename":
            return 0
        fdef: GraphQLField = owner.fields[name]  # type: ignore[attr-defined]
        named = get_named_type(fdef.type)
        if is_leaf_type(named):
            return 0
        args = get_argument_values(fdef, node, run.variables)
        size = args.get("first") or args.get("last") or DEFAULT_LIST_SIZE
        if named.name.endswith("Connection"):
            node_type = self._connection_node_type(named)
            per_node = 1 + self._connection_children_cost(node, named, node_type, run)
            return 2 + connection_multiplier(size) * per_node
        per_item = 1 + self._selection_cost(node.selection_set, named, run)
        if is_list_type(fdef.type.of_type if isinstance(fdef.type, GraphQLNonNull) else fdef.type):
            return size * per_item
        return per_item

    def _connection_node_type(self, conn: GraphQLNamedType) -> GraphQLNamedType:
        return _named_field(conn, "nodes")

    def _connection_children_cost(
        self, node: FieldNode, conn: GraphQLNamedType, node_type: GraphQLNamedType, run: _Run
    ) -> int:
        cost = 0
        edge_type = _named_field(conn, "edges")
        for child, _ in self._fields(node.selection_set, conn, run, None):
            if child.name.value in ("nodes",):
                cost = max(cost, self._selection_cost(child.selection_set, node_type, run))
            elif child.name.value == "edges":
                for grand, _ in self._fields(child.selection_set, edge_type, run, None):
                    if grand.name.value == "node":
                        cost = max(cost, self._selection_cost(grand.selection_set, node_type, run))
        return cost

    # ------------------------------------------------------------------ execution

    def execute(
        self,
        prepared: Prepared,
        operation: OperationDefinitionNode,
        variables: dict[str, Any],
        root: Mapping[str, Any],
    ) -> tuple[dict[str, Any], int]:
        """``data`` and the actual cost. Root values are callables taking the arguments."""
        run = _Run(variables, prepared.fragments)
        data = self._select(
            root, operation.selection_set, self.root_type(operation), run, root=True
        )
        cost = MUTATION_COST if operation.operation.value == "mutation" else run.cost
        return data, cost

    def bulk_lines(
        self,
        value: Any,
        selection_set: SelectionSetNode | None,
        type_name: str,
        fragments: dict[str, FragmentDefinitionNode],
        plans: dict[tuple[int, str], list[tuple[Any, ...]]] | None = None,
    ) -> list[dict[str, Any]]:
        """One root record as bulk JSONL objects: the record, then every child of its nested
        connections (parent before children) with ``__parentId`` naming the parent's id."""
        run = _Run({}, fragments, bulk=[], plans=plans if plans is not None else {})
        owner = self.schema.get_type(type_name)
        assert isinstance(owner, GraphQLObjectType)
        root = self._select(value, selection_set, owner, run)
        return [root, *(line for line in run.bulk or () if line is not None)]

    def _fields(
        self,
        selection_set: SelectionSetNode | None,
        parent: GraphQLNamedType,
        run: _Run,
        concrete: str | None,
    ) -> list[tuple[FieldNode, GraphQLNamedType]]:
        """Fields of a selection with fragments flattened; ``concrete`` filters type conditions
        (None keeps every branch, tagged with its owner type, for cost)."""
        out: list[tuple[FieldNode, GraphQLNamedType]] = []
        if selection_set is None:
            return out
        for sel in selection_set.selections:
            if not _included(sel, run.variables):
                continue
            if isinstance(sel, FieldNode):
                out.append((sel, parent))
                continue
            if isinstance(sel, InlineFragmentNode):
                cond = sel.type_condition.name.value if sel.type_condition else parent.name
                inner = sel.selection_set
            else:
                assert isinstance(sel, FragmentSpreadNode)
                frag = run.fragments[sel.name.value]
                cond, inner = frag.type_condition.name.value, frag.selection_set
            cond_type = self.schema.get_type(cond)
            assert cond_type is not None
            if concrete is not None:
                if cond == concrete or (
                    is_abstract_type(cond_type) and cond in _interfaces(self.schema, concrete)
                ):
                    out.extend(
                        self._fields(inner, self.schema.get_type(concrete) or parent, run, concrete)
                    )
                elif cond == parent.name:
                    out.extend(self._fields(inner, parent, run, concrete))
            else:
                owner = parent if cond == parent.name or is_abstract_type(cond_type) else cond_type
                out.extend(self._fields(inner, owner, run, None))
        return out

    def _select(
        self,
        value: Any,
        selection_set: SelectionSetNode | None,
        owner: GraphQLNamedType,
        run: _Run,
        *,
        root: bool = False,
    ) -> dict[str, Any]:
        concrete = owner
        if is_abstract_type(owner):
            concrete = self.schema.get_type(value.get("__typename")) or owner
        out: dict[str, Any] = {}
        pushed = run.bulk is not None
        if pushed:
            run.parents.append(value.get("id") if isinstance(value, Mapping) else None)
        try:
            self._select_into(out, value, selection_set, concrete, run)
        finally:
            if pushed:
                run.parents.pop()
        return out

    def _select_into(
        self,
        out: dict[str, Any],
        value: Any,
        selection_set: SelectionSetNode | None,
        concrete: GraphQLNamedType,
        run: _Run,
    ) -> None:
        plan_key = (id(selection_set), concrete.name)
        plan = run.plans.get(plan_key)
        if plan is None:
            plan = []
            for node, _ in self._fields(selection_set, concrete, run, concrete.name):
                name = node.name.value
                key = node.alias.value if node.alias else name
                if name == "__typename":
                    plan.append((node, name, key, None, None))
                    continue
                fdef: GraphQLField = concrete.fields[name]  # type: ignore[attr-defined]
                args = get_argument_values(fdef, node, run.variables) if fdef.args else {}
                plan.append((node, name, key, fdef, args))
            run.plans[plan_key] = plan
        getter = value.get if isinstance(value, Mapping) else None
        for node, name, key, fdef, args in plan:
            if fdef is None:
                out[key] = concrete.name
                continue
            raw = getter(name) if getter is not None else None
            if callable(raw):
                raw = raw(args)
            if raw is None:
                out[key] = None
                continue
            merged = self._complete(raw, fdef.type, node, args, run)
            if merged is _DROP:
                continue
            if key in out and isinstance(out[key], dict) and isinstance(merged, dict):
                out[key].update(merged)
            else:
                out[key] = merged

    def _complete(
        self, raw: Any, gtype: Any, node: FieldNode, args: dict[str, Any], run: _Run
    ) -> Any:
        if raw is None:
            return None
        info = _TYPE_INFO.get(gtype)
        if info is None:
            info = _TYPE_INFO[gtype] = (get_nullable_type(gtype), get_named_type(gtype))
        nullable, named = info
        if is_leaf_type(named):
            return raw
        if isinstance(nullable, GraphQLList):
            items = list(raw)
            first = args.get("first")
            if first is not None:
                items = items[:first]
            return [self._complete(item, nullable.of_type, node, {}, run) for item in items]
        if named.name.endswith("Connection"):
            return self._connection(raw, named, node, args, run)
        run.cost += 1
        return self._select(raw, node.selection_set, named, run)

    def _connection(
        self, raw: Any, conn: GraphQLNamedType, node: FieldNode, args: dict[str, Any], run: _Run
    ) -> Any:
        if run.bulk is not None and run.parents:
            return self._bulk_children(raw, conn, node, run)
        start = run.cost
        page = raw if isinstance(raw, Connection) else _cut(list(raw), args)
        node_type = self._connection_node_type(conn)
        edge_type = _named_field(conn, "edges")
        run.cost += len(page.items)
        completed: list[dict[str, Any]] | None = None
        out: dict[str, Any] = {}
        for child, _ in self._fields(node.selection_set, conn, run, conn.name):
            key = child.alias.value if child.alias else child.name.value
            name = child.name.value
            if name == "__typename":
                out[key] = conn.name
            elif name == "pageInfo":
                info = {
                    "hasNextPage": page.has_next,
                    "hasPreviousPage": page.has_previous,
                    "startCursor": page.cursors[0] if page.cursors else None,
                    "endCursor": page.cursors[-1] if page.cursors else None,
                    "__typename": "PageInfo",
                }
                out[key] = {
                    (f.alias.value if f.alias else f.name.value): info[f.name.value]
                    for f, _ in self._fields(
                        child.selection_set, _named(self.schema, "PageInfo"), run, "PageInfo"
                    )
                }
            elif name == "nodes":
                out[key] = [
                    self._select(item, child.selection_set, node_type, run) for item in page.items
                ]
            elif name == "edges":
                edges = []
                for item, cursor in zip(page.items, page.cursors, strict=False):
                    edge: dict[str, Any] = {}
                    for grand, _ in self._fields(
                        child.selection_set, edge_type, run, edge_type.name
                    ):
                        gkey = grand.alias.value if grand.alias else grand.name.value
                        if grand.name.value == "cursor":
                            edge[gkey] = cursor
                        elif grand.name.value == "node":
                            edge[gkey] = self._select(item, grand.selection_set, node_type, run)
                        elif grand.name.value == "__typename":
                            edge[gkey] = edge_type.name
                    edges.append(edge)
                out[key] = edges
        del completed
        # The nodes cost what they hold, scaled as the requested cost is (see the module doc).
        returned = len(page.items)
        spent = run.cost - start
        scaled = -(-spent * connection_multiplier(returned) // returned) if returned else 0
        run.cost = start + 2 + scaled
        return out

    def _bulk_children(self, raw: Any, conn: GraphQLNamedType, node: FieldNode, run: _Run) -> Any:
        assert run.bulk is not None
        node_type = self._connection_node_type(conn)
        edge_type = _named_field(conn, "edges")
        selection: SelectionSetNode | None = None
        for child, _ in self._fields(node.selection_set, conn, run, conn.name):
            if child.name.value == "nodes":
                selection = child.selection_set
            elif child.name.value == "edges":
                for grand, _ in self._fields(child.selection_set, edge_type, run, edge_type.name):
                    if grand.name.value == "node":
                        selection = grand.selection_set
        parent = run.parents[-1]
        items = raw.items if isinstance(raw, Connection) else list(raw)
        for item in items:
            slot = len(run.bulk)
            run.bulk.append(None)
            line = self._select(item, selection, node_type, run)
            line["__parentId"] = parent
            run.bulk[slot] = line
        return _DROP


_TYPE_INFO: dict[Any, tuple[Any, Any]] = {}


def _cut(items: list[Any], args: Mapping[str, Any]) -> Connection:
    """Relay pagination over an in-memory list with index cursors."""
    start, end = 0, len(items)
    after = _index_from_cursor(args.get("after"))
    before = _index_from_cursor(args.get("before"))
    if after is not None:
        start = after + 1
    if before is not None:
        end = min(end, before)
    first, last = args.get("first"), args.get("last")
    if first is not None:
        end = min(end, start + first)
    if last is not None:
        start = max(start, end - last)
    return Connection(
        items=items[start:end],
        cursors=[index_cursor(i) for i in range(start, end)],
        has_next=end < len(items),
        has_previous=start > 0,
    )


def _included(sel: Any, variables: Mapping[str, Any]) -> bool:
    for directive in getattr(sel, "directives", None) or ():
        name = directive.name.value
        if name not in ("skip", "include"):
            continue
        arg = next((a for a in directive.arguments if a.name.value == "if"), None)
        if arg is None:
            continue
        value = arg.value
        flag = (
            variables.get(value.name.value)
            if value.kind == "variable"
            else getattr(value, "value", False)
        )
        if (name == "skip" and flag) or (name == "include" and not flag):
            return False
    return True


def _named_field(owner: GraphQLNamedType, name: str) -> GraphQLNamedType:
    """The named type of ``owner``'s field ``name`` (owner is an object or interface type)."""
    field_def: GraphQLField = owner.fields[name]  # type: ignore[attr-defined]
    return get_named_type(field_def.type)


def _named(schema: GraphQLSchema, type_name: str) -> GraphQLNamedType:
    """A type the schema must define (the emulator's own schema file)."""
    found = schema.get_type(type_name)
    assert found is not None, type_name
    return found


def _interfaces(schema: GraphQLSchema, type_name: str) -> set[str]:
    found = schema.get_type(type_name)
    return {i.name for i in getattr(found, "interfaces", ())}


def _validation_error(errors: Sequence[GraphQLError]) -> QueryError:
    first = errors[0]
    err = QueryError(first.message)
    err.extensions = {}
    err.all = [  # type: ignore[attr-defined]
        {
            "message": e.message,
            "locations": [{"line": loc.line, "column": loc.column} for loc in (e.locations or ())],
            "path": e.path,
            "extensions": {"code": "GRAPHQL_VALIDATION_FAILED" if e.locations else "BAD_REQUEST"},
        }
        for e in errors
    ]
    return err


Resolver = Callable[[dict[str, Any]], Any]

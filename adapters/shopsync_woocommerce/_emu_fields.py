"""WordPress's global ``_fields`` query parameter, as the emulated store honours it.

Sources (WordPress/wordpress-develop, ``src/wp-includes/rest-api.php``,
https://github.com/WordPress/wordpress-develop/blob/trunk/src/wp-includes/rest-api.php):

- ``rest_filter_response_fields`` (since 4.8, the ``rest_post_dispatch`` filter): the list
  is ``wp_parse_list`` (split on commas and whitespace, empties dropped; none at all means
  no filter; a PHP array ``_fields[]`` taken as it is), each name trimmed; a name ``a.b``
  (since 5.3) keeps key ``b`` of the object ``a`` (a later ``a`` keeps the whole of ``a``,
  and an ``a.b`` after an ``a`` is skipped); a list response (``wp_is_numeric_array``) is
  filtered item by item, an error response not at all. Unknown names are simply absent
  from the result.
- ``_rest_array_intersect_key_recursive``: PHP's ``array_intersect_key`` level by level. A
  JSON list is a PHP array keyed 0, 1, ...: ``line_items.name`` keeps none of a list's
  items (no key ``name``), so dot paths only reach into objects (``billing.email``).
- ``rest_is_field_included`` (since 5.3): ``a`` is wanted when ``a``, ``a.<child>`` or a
  parent ``<p>`` of ``a = <p>.<x>`` is named; ``WP_REST_Controller::get_fields_for_response``
  keeps the schema's properties so included, and controllers compute only those.

WooCommerce (woocommerce/woocommerce, ``plugins/woocommerce/includes/rest-api/Controllers/
Version2/class-wc-rest-orders-v2-controller.php``, ``WC_REST_Orders_V2_Controller::
get_formatted_item_data``): only the "extra" fields requested by their exact name are
computed (``meta_data``, ``line_items``, ``tax_lines``, ``shipping_lines``, ``fee_lines``,
``coupon_lines``, ``refunds``, ``payment_url``, ``is_editable``, ``needs_payment``,
``needs_processing``; ``get_fields_for_response`` keeps a dot path as it is, so
``line_items.name`` leaves the line items out), and only the
requested decimals and dates are formatted (a ``*_gmt`` date needs its local twin computed);
the base data is always read. :func:`._render_orders.render_order` skips the same parts.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl

__all__ = ["filter_fields", "filter_response", "is_field_included", "requested_fields"]

_SPLIT = re.compile(r"[\s,]+")


def requested_fields(query: Mapping[str, str], query_string: str = "") -> tuple[str, ...] | None:
    """The ``_fields`` names of a request (``wp_parse_list``, trimmed); None: no filter.
    ``query_string`` (the raw one) for PHP's arrays, ``_fields[]=a&_fields[]=b``, which
    ``wp_parse_list`` keeps as they are (no split on commas); the later of ``_fields`` and
    ``_fields[...]`` wins, as PHP reads the query."""
    raw: str | list[str] | None = query.get("_fields")
    if "_fields[" in query_string or "_fields%5B" in query_string:
        raw = None
        for key, value in parse_qsl(query_string, keep_blank_values=True):
            if key == "_fields":
                raw = value
            elif key.startswith("_fields[") and key.endswith("]"):
                raw = [*raw, value] if isinstance(raw, list) else [value]
    if raw is None:
        return None
    if isinstance(raw, list):
        return tuple(f.strip() for f in raw) or None
    fields = tuple(f.strip() for f in _SPLIT.split(raw) if f)
    return fields or None


@functools.lru_cache(maxsize=64)
def excluded(names: tuple[str, ...], fields: tuple[str, ...]) -> frozenset[str]:
    """Which of ``names`` a WooCommerce order is built without (asked once per request
    shape, not once per record): a part it builds on request when its exact name is not
    asked for (``get_fields_for_response`` keeps ``line_items.name`` as it is, and
    ``get_formatted_item_data`` intersects the names exactly: the part is then absent);
    ``_links`` when :func:`is_field_included` leaves it out."""
    return frozenset(
        n
        for n in names
        if (not is_field_included(n, fields) if n.startswith("_") else n not in fields)
    )


def is_field_included(field: str, fields: Sequence[str] | None) -> bool:
    """``rest_is_field_included``: True for every field when there is no filter."""
    if fields is None or field in fields:
        return True
    return any(f.startswith(f"{field}.") or field.startswith(f"{f}.") for f in fields)


def _keyed(fields: Sequence[str]) -> dict[str, Any]:
    """The nested accepted-field hierarchy of ``rest_filter_response_fields``."""
    keyed: dict[str, Any] = {}
    for field in fields:
        parts = field.split(".")
        ref = keyed
        skipped = False
        while len(parts) > 1:
            head = parts.pop(0)
            if ref.get(head) is True:
                skipped = True  # the parent is already wanted whole
                break
            ref = ref.setdefault(head, {})
        if not skipped:
            ref[parts[0]] = True
    return keyed


def _intersect(value: Any, keyed: dict[str, Any]) -> Any:
    """``_rest_array_intersect_key_recursive`` of a JSON object or list."""
    if isinstance(value, dict):
        out = {k: v for k, v in value.items() if k in keyed}
    else:  # a list: PHP keys 0, 1, ... compared as strings
        out = {str(i): v for i, v in enumerate(value) if str(i) in keyed}
    for key, item in out.items():
        if isinstance(item, (dict, list)) and isinstance(keyed[key], dict):
            out[key] = _intersect(item, keyed[key])
    if isinstance(value, list) and list(out) == [str(i) for i in range(len(out))]:
        return list(out.values())  # still keyed 0..n-1: PHP writes it as a list
    return out


def filter_fields(data: Any, fields: Sequence[str] | None) -> Any:
    """A response body as ``rest_filter_response_fields`` leaves it."""
    if fields is None or not isinstance(data, (dict, list)):
        return data
    keyed = _keyed(fields)
    if isinstance(data, list):
        return [_intersect(item, keyed) if isinstance(item, dict) else item for item in data]
    return _intersect(data, keyed)


def filter_response(data: Any, fields: Sequence[str] | None) -> Any:
    """A response as sent: :func:`filter_fields`, then a single object's ``_links`` whole
    again (``WP_REST_Server::serve_request`` adds the response's links in
    ``response_to_data`` after the ``rest_post_dispatch`` filter; a list's items carry theirs
    in their data, ``prepare_response_for_collection``, so the filter reaches them)."""
    out = filter_fields(data, fields)
    if fields is not None and isinstance(data, dict) and "_links" in data:
        out["_links"] = data["_links"]
    return out

"""The GraphQL documents the adapter sends, kept in one place so their cost is easy to see.

Nested lists are small on purpose: Shopify charges a connection ``2 + multiplier(first) x
node`` before running it (logarithmic since 2025-07, :mod:`._cost`) but a plain list such as
``refunds(first:)`` ``first x item``, and every nested cost is multiplied again by the page
size's multiplier. With 10 lines, 2 refunds, 2 fulfilments, the tax lines and 3 discount
applications an order node costs 165 points, so a page of 22 orders requests
2 + 6 x 165 = 992 of the 1000-point cap. Orders
that overflow a nested limit are completed by follow-up queries (:data:`ORDER_LINES`,
:data:`ORDER_REFUNDS`, :data:`ORDER_FULFILLMENTS`); bulk reads have no such limits.
"""

from __future__ import annotations

from shopsync_shopify.versions import released

__all__ = [
    "BULK_CUSTOMERS",
    "BULK_ORDERS",
    "CUSTOMERS_COUNT",
    "CUSTOMER_FIELDS",
    "LINE_LIMIT",
    "NESTED_LIMIT",
    "ORDER_FIELDS",
    "PRODUCT_FIELDS",
    "for_version",
]

LINE_LIMIT = 10
"""Line items fetched with each order of a page; more are paged per order."""
NESTED_LIMIT = 2
"""Refunds and fulfilments fetched with each order of a page (and lines of each)."""

MONEY = "shopMoney { amount currencyCode }"
ADDRESS = "firstName lastName company address1 address2 city province zip countryCodeV2 phone"
LINE = f"""id title quantity currentQuantity sku
  product {{ id }} variant {{ id }}
  originalUnitPriceSet {{ {MONEY} }} totalDiscountSet {{ {MONEY} }}"""
CONSENT = "marketingState marketingOptInLevel consentUpdatedAt"

CUSTOMER_FIELDS = f"""id email phone firstName lastName createdAt updatedAt tags
  emailMarketingConsent {{ {CONSENT} }}
  smsMarketingConsent {{ {CONSENT} }}
  defaultAddress {{ {ADDRESS} }}
  numberOfOrders amountSpent {{ amount currencyCode }}
  metafield(namespace: "facts", key: "birth_date") {{ value }}"""

_TOKENS = "checkoutToken cartToken"
"""The order's checkout and cart tokens: on the GraphQL ``Order`` since 2026-07
(``effectiveApiVersion``: https://shopify.dev/changelog/new-checkouttoken-field-added-to-the-order-object,
https://shopify.dev/changelog/new-field-carttoken-added-to-the-order-graphql-admin-api)."""
_TOKENS_SINCE = released("2026-07")

_ORDER_SCALARS = f"""id name email createdAt updatedAt processedAt cancelledAt closedAt
  displayFinancialStatus displayFulfillmentStatus currencyCode discountCodes sourceName tags
  test taxesIncluded cancelReason {_TOKENS}
  totalTipReceivedSet {{ {MONEY} }} currentTotalDutiesSet {{ {MONEY} }}
  taxLines {{ title rate priceSet {{ {MONEY} }} }}
  subtotalPriceSet {{ {MONEY} }} totalDiscountsSet {{ {MONEY} }}
  totalShippingPriceSet {{ {MONEY} }} totalTaxSet {{ {MONEY} }}
  totalPriceSet {{ {MONEY} }} totalRefundedSet {{ {MONEY} }} edited
  customer {{ id }}
  billingAddress {{ {ADDRESS} }} shippingAddress {{ {ADDRESS} }}"""

REFUND = f"""id createdAt note totalRefundedSet {{ {MONEY} }}
    refundLineItems(first: $nested) {{ pageInfo {{ hasNextPage }}
      nodes {{ quantity lineItem {{ id }} subtotalSet {{ {MONEY} }} }} }}"""
FULFILLMENT = """id createdAt deliveredAt status trackingInfo(first: 3) { company number url }
    fulfillmentLineItems(first: $nested) { pageInfo { hasNextPage }
      nodes { quantity lineItem { id } } }"""

_NESTED = str(NESTED_LIMIT + 2)
DISCOUNTS = """discountApplications(first: 3) { nodes { __typename allocationMethod
    value { __typename ... on MoneyV2 { amount } ... on PricingPercentageValue { percentage } }
    ... on DiscountCodeApplication { code } ... on ManualDiscountApplication { title }
    ... on AutomaticDiscountApplication { title } ... on ScriptDiscountApplication { title } } }"""
ORDER_FIELDS = f"""{_ORDER_SCALARS}
  {DISCOUNTS}
  lineItems(first: {LINE_LIMIT}) {{ pageInfo {{ hasNextPage endCursor }} nodes {{ {LINE} }} }}
  refunds(first: {NESTED_LIMIT}) {{ {REFUND.replace("$nested", _NESTED)} }}
  fulfillments(first: {NESTED_LIMIT}) {{ {FULFILLMENT.replace("$nested", _NESTED)} }}"""

PRODUCT_FIELDS = """id title productType vendor tags status createdAt updatedAt
  variants(first: 20) { pageInfo { hasNextPage } nodes { id sku title price } }
  collections(first: 10) { nodes { title } }"""


def for_version(document: str, api_version: str) -> str:
    """``document`` as a shop pinned to ``api_version`` can answer it: without the order's
    checkout tokens before 2026-07 (a supported older version refuses a field it lacks, and
    the whole query with it: no order would sync); as is for newer and ``unstable``."""
    start = released(api_version)
    if start is not None and _TOKENS_SINCE is not None and start < _TOKENS_SINCE:
        return document.replace(f" {_TOKENS}", "")
    return document


def page_query(root: str, fields: str) -> str:
    """A page of ``root`` sorted by ``updated_at`` (ties by id) after ``$after``."""
    return f"""query ShopsyncPage($first: Int!, $after: String, $query: String) {{
  {root}(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {{
    pageInfo {{ hasNextPage endCursor }}
    edges {{ node {{ {fields} }} }}
  }}
}}"""


ORDER_LINES = f"""query ShopsyncOrderLines($id: ID!, $after: String) {{
  order(id: $id) {{ lineItems(first: 100, after: $after) {{
    pageInfo {{ hasNextPage endCursor }} nodes {{ {LINE} }} }} }}
}}"""

ORDER_REFUNDS = f"""query ShopsyncOrderRefunds($id: ID!, $nested: Int!) {{
  order(id: $id) {{ refunds(first: 10) {{ {REFUND} }} }}
}}"""

_REFUND_TAXED = REFUND.replace("subtotalSet {", "totalTaxSet { " + MONEY + " } subtotalSet {", 1)
CURRENT = f"""currentTotalPriceSet {{ {MONEY} }} currentSubtotalPriceSet {{ {MONEY} }}
  currentTotalTaxSet {{ {MONEY} }} currentTotalDiscountsSet {{ {MONEY} }}"""
"""An edited order's figures after edits and refunds (``_order_facts.after_edits``). A page
selects only the free ``edited`` flag: these 8 points a node would halve the page size under
the logarithmic cost, and edited orders are few, so they are fetched per edited order."""
ORDER_CURRENT = f"""query ShopsyncOrderCurrent($id: ID!, $nested: Int!) {{
  order(id: $id) {{ {CURRENT}
    refunds(first: 10) {{ {_REFUND_TAXED} }} }}
}}"""

ORDER_FULFILLMENTS = f"""query ShopsyncOrderFulfillments($id: ID!, $nested: Int!) {{
  order(id: $id) {{ fulfillments(first: 10) {{ {FULFILLMENT} }} }}
}}"""

ORDERS_COUNT = """query ShopsyncOrdersCount($query: String) {
  ordersCount(query: $query, limit: null) { count precision }
}"""

SHOP = "query ShopsyncShop { shop { myshopifyDomain currencyCode } }"

_BULK_LINE = LINE.replace("id title", "__typename id title", 1)
_BULK_DISCOUNTS = DISCOUNTS.replace("(first: 3) { nodes {", " { edges { node {").replace(
    "} } }", "} } } }", 1
)
BULK_ORDERS = f"""{{
  orders(QUERY_ARG sortKey: UPDATED_AT) {{ edges {{ node {{
    {_ORDER_SCALARS} {CURRENT}
    lineItems {{ edges {{ node {{ {_BULK_LINE} }} }} }}
    {_BULK_DISCOUNTS}
    refunds {{ id createdAt note totalRefundedSet {{ {MONEY} }}
      refundLineItems {{ edges {{ node {{
        __typename quantity lineItem {{ id }} subtotalSet {{ {MONEY} }}
        totalTaxSet {{ {MONEY} }} }} }} }} }}
    fulfillments {{ id createdAt deliveredAt status trackingInfo {{ company number url }}
      fulfillmentLineItems {{ edges {{ node {{ __typename quantity lineItem {{ id }} }} }} }} }}
  }} }} }}
}}"""

BULK_CUSTOMERS = f"""{{
  customers(QUERY_ARG sortKey: UPDATED_AT) {{ edges {{ node {{
    {CUSTOMER_FIELDS}
  }} }} }}
}}"""

CUSTOMERS_COUNT = """query ShopsyncCustomersCount($query: String) {
  customersCount(query: $query, limit: null) { count precision }
}"""

BULK_RUN = """mutation ShopsyncBulk($query: String!) {
  bulkOperationRunQuery(query: $query, groupObjects: false) {
    bulkOperation { id status }
    userErrors { field message code }
  }
}"""

BULK_STATUS = """query ShopsyncBulkStatus($id: ID!) {
  node(id: $id) { ... on BulkOperation {
    id status errorCode objectCount rootObjectCount url partialDataUrl } }
}"""

DELETIONS = """query ShopsyncDeletions($first: Int!, $after: String, $query: String) {
  events(first: $first, after: $after, query: $query, sortKey: ID) {
    pageInfo { hasNextPage endCursor }
    nodes { ... on BasicEvent { action createdAt subjectId subjectType } } }
}"""
"""Deleted records through ``events`` (``action:destroy``; 2024-10+), the GraphQL successor
of the REST Events API and of the deprecated ``deletionEvents``."""

CURRENT_BULK = """query ShopsyncCurrentBulk {
  currentBulkOperation { id status errorCode objectCount url }
}"""

# -- the write side (shopsync.sinks.Platform); every mutation costs 10 points ----------------

DISCOUNT_BY_CODE = """query DiscountByCode($code: String!) {
  codeDiscountNodeByCode(code: $code) {
    id
    codeDiscount { __typename ... on DiscountCodeBasic { title status endsAt usageLimit } }
  }
}"""

DISCOUNT_CREATE = """mutation DiscountCreate($input: DiscountCodeBasicInput!) {
  discountCodeBasicCreate(basicCodeDiscount: $input) {
    codeDiscountNode { id codeDiscount { __typename ... on DiscountCodeBasic { title endsAt } } }
    userErrors { field message code }
  }
}"""

TAGS_ADD = """mutation TagsAdd($id: ID!, $tags: [String!]!) {
  tagsAdd(id: $id, tags: $tags) { node { id } userErrors { field message } }
}"""

TAGS_REMOVE = """mutation TagsRemove($id: ID!, $tags: [String!]!) {
  tagsRemove(id: $id, tags: $tags) { node { id } userErrors { field message } }
}"""

METAFIELDS_SET = """mutation MetafieldsSet($metafields: [MetafieldsSetInput!]!) {
  metafieldsSet(metafields: $metafields) {
    metafields { id namespace key value type }
    userErrors { field message code }
  }
}"""

"""The store's tables, at the newest schema version.

Conventions (they keep every engine's sums and sorts identical):

- money is an ``BIGINT`` count of ten-thousandths of the currency unit (:data:`MONEY_SCALE`)
  beside a currency code: integer sums agree exactly in SQLite, PostgreSQL and Polars,
  while SQLite's NUMERIC affinity would turn a Decimal into a float. Four places hold every
  ISO 4217 exponent and the sub-cent line totals some WooCommerce stores record;
- quantities are ``BIGINT`` ten-thousandths too (:data:`QUANTITY_SCALE`, revision 0009): a
  WooCommerce store selling by weight sells 1.5 kg, and integer sums of it agree in every
  engine as money's do (a NUMERIC or REAL column would not, in SQLite);
- instants are ``BIGINT`` microseconds since the epoch, UTC (cheap to index and to read
  into a columnar frame); calendar dates are ISO text;
- every record table is keyed by ``(shop_id, id)``; ``shop_id`` points into ``shops``;
- child rows (line items, refunds, fulfilments) are replaced as a whole with their order.

Migrations in ``migrations/versions`` build exactly these tables; a test compares them.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)

MONEY_SCALE = 4
QUANTITY_SCALE = 4

metadata = MetaData()


def _money(name: str, nullable: bool = False) -> Column[int]:
    return Column(name, BigInteger, nullable=nullable)


def _instant(name: str, nullable: bool = True) -> Column[int]:
    return Column(name, BigInteger, nullable=nullable)


shops = Table(
    "shops",
    metadata,
    Column("shop_id", Integer, primary_key=True, autoincrement=True),
    Column("platform", String(64), nullable=False),
    Column("shop", String(255), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    # revision 0014: the shop's order-facts change sequence (see store/facts.py): the last
    # value a write of its orders took, and the last value an erasure (a deletion, a GDPR
    # redaction) took, so that a snapshot holding erased data is rewritten at the next read.
    Column("facts_seq", BigInteger, nullable=False, server_default=text("0")),
    Column("facts_erased_seq", BigInteger, nullable=False, server_default=text("0")),
    UniqueConstraint("platform", "shop", name="uq_shops_platform_shop"),
)

customers = Table(
    "customers",
    metadata,
    Column("shop_id", Integer, primary_key=True),
    Column("id", String(255), primary_key=True),
    Column("email", Text),
    Column("phone", Text),
    Column("first_name", Text),
    Column("last_name", Text),
    _instant("created_at", nullable=False),
    _instant("updated_at", nullable=False),
    Column("tags", JSON, nullable=False),
    Column("email_consent", String(32), nullable=False),
    Column("email_opt_in", String(32), nullable=False),
    _instant("email_consent_at"),
    Column("sms_consent", String(32), nullable=False),
    Column("sms_opt_in", String(32), nullable=False),
    _instant("sms_consent_at"),
    Column("birthday", String(10)),
    Column("default_address", JSON),
    Column("orders_count", Integer),
    _money("total_spent", nullable=True),
    Column("total_spent_currency", String(8)),  # 8 since revision 0009: Shopify's USDC
    Column("content_hash", String(32)),  # revision 0005
    Index("ix_customers_updated", "shop_id", "updated_at"),
    Index("ix_customers_email", "shop_id", "email"),
)

orders = Table(
    "orders",
    metadata,
    Column("shop_id", Integer, primary_key=True),
    Column("id", String(255), primary_key=True),
    Column("name", Text),
    Column("customer_id", String(255)),
    Column("email", Text),
    _instant("created_at", nullable=False),
    _instant("updated_at", nullable=False),
    _instant("processed_at"),
    _instant("paid_at"),
    _instant("cancelled_at"),
    _instant("closed_at"),
    Column("financial_status", String(32), nullable=False),
    Column("fulfillment_status", String(32), nullable=False),
    Column("currency", String(8), nullable=False),  # 8 since revision 0009: USDC
    _money("subtotal"),
    _money("total_discounts"),
    _money("total_shipping"),
    _money("total_tax"),
    _money("total"),
    _money("total_refunded"),
    Column("discount_codes", JSON, nullable=False),
    Column("source", Text),
    Column("tags", JSON, nullable=False),
    Column("billing_address", JSON),
    Column("shipping_address", JSON),
    Column("content_hash", String(32)),  # revision 0005
    # revision 0009 (issue 15): what real shops' orders carry beyond the first models.
    Column("test", Boolean, nullable=False, server_default=false()),
    Column("taxes_included", Boolean),
    Column("cancel_reason", Text),
    _money("total_tip", nullable=True),
    _money("total_duties", nullable=True),
    Column("tax_lines", JSON),
    Column("discount_applications", JSON),
    Column("fee_lines", JSON),
    Column("refunds_complete", Boolean, nullable=False, server_default=true()),
    # revision 0014: the shop's change sequence value of the write that last touched this
    # order or its child rows (0: before revision 0014); a snapshot refresh reads seq > its own.
    Column("seq", BigInteger, nullable=False, server_default=text("0")),
    Index("ix_orders_customer", "shop_id", "customer_id", "created_at"),
    Index("ix_orders_updated", "shop_id", "updated_at"),
    Index("ix_orders_seq", "shop_id", "seq"),
)

line_items = Table(
    "line_items",
    metadata,
    Column("shop_id", Integer, primary_key=True),
    Column("order_id", String(255), primary_key=True),
    Column("id", String(255), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("product_id", String(255)),
    Column("variant_id", String(255)),
    Column("sku", Text),
    Column("title", Text, nullable=False),
    Column("product_type", Text),
    Column("quantity", BigInteger, nullable=False),  # ten-thousandths since revision 0009
    _money("unit_price"),
    _money("total_discount", nullable=True),
    _money("total"),
    Column("refunded_quantity", BigInteger, nullable=False),  # ten-thousandths, as quantity
    # No secondary index: no query reads lines by product (revision 0021 dropped one).
)

refunds = Table(
    "refunds",
    metadata,
    Column("shop_id", Integer, primary_key=True),
    Column("order_id", String(255), primary_key=True),
    Column("id", String(255), primary_key=True),
    Column("position", Integer, nullable=False),
    _instant("created_at", nullable=False),
    _money("amount"),
    Column("note", Text),
    Column("lines", JSON, nullable=False),
)

fulfillments = Table(
    "fulfillments",
    metadata,
    Column("shop_id", Integer, primary_key=True),
    Column("order_id", String(255), primary_key=True),
    Column("id", String(255), primary_key=True),
    Column("position", Integer, nullable=False),
    _instant("created_at", nullable=False),
    Column("status", String(32), nullable=False),
    Column("tracking_company", Text),
    Column("tracking_numbers", JSON, nullable=False),
    Column("tracking_urls", JSON, nullable=False),
    _instant("delivered_at"),
    Column("lines", JSON, nullable=False),
)

products = Table(
    "products",
    metadata,
    Column("shop_id", Integer, primary_key=True),
    Column("id", String(255), primary_key=True),
    Column("title", Text, nullable=False),
    Column("product_type", Text),
    Column("vendor", Text),
    Column("tags", JSON, nullable=False),
    Column("categories", JSON, nullable=False),
    Column("status", String(32)),
    _instant("created_at", nullable=False),
    _instant("updated_at", nullable=False),
    Column("variants", JSON, nullable=False),
    Column("content_hash", String(32)),  # revision 0005
)

sync_cursors = Table(
    "sync_cursors",
    metadata,
    Column("shop_id", Integer, primary_key=True),
    Column("resource", String(64), primary_key=True),
    Column("cursor", Text),
    _instant("high_water"),
    Column("state", JSON, nullable=False),
    _instant("updated_at", nullable=False),
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("shop_id", Integer, nullable=False),
    Column("resource", String(64), nullable=False),
    Column("record_key", String(255), nullable=False),
    Column("record_id", String(255)),
    Column("raw", Text, nullable=False),
    Column("reason", Text, nullable=False),
    _instant("first_seen", nullable=False),
    _instant("last_seen", nullable=False),
    Column("times_seen", Integer, nullable=False),
    _instant("resolved_at"),
    UniqueConstraint("shop_id", "resource", "record_key", name="uq_quarantine_record"),
)

# Added in revision 0002: every consent state a customer was seen in, so that features can
# take consent "as it was" on any past date.
consent_history = Table(
    "consent_history",
    metadata,
    Column("shop_id", Integer, primary_key=True),
    Column("customer_id", String(255), primary_key=True),
    Column("channel", String(8), primary_key=True),
    # observed_at: the customer's updated_at when this state was first seen.
    Column("observed_at", BigInteger, primary_key=True),
    Column("state", String(32), nullable=False),
    Column("opt_in_level", String(32), nullable=False),
    _instant("consent_updated_at"),
    # revision 0011: where a consent not read from the platform came from (a list import, a
    # double opt-in confirmation); NULL for what a sync or webhook saw.
    Column("source", String(64)),
)

# Added in revision 0003: webhook deliveries already applied (a platform retries a delivery
# with the same id; it must be applied once).
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("shop_id", Integer, primary_key=True),
    Column("delivery_id", String(255), primary_key=True),
    Column("topic", String(128), nullable=False),
    _instant("received_at", nullable=False),
    Index("ix_webhook_deliveries_received", "received_at"),
)

# Added in revision 0004: the loyalty ledger, append-only. Every entry carries a source key
# derived from what caused it ("earn:{customer}:{order}", "approve:...", "expire:...") and
# the key is unique per shop, so writing the same derivation twice adds nothing. ``pending``
# and ``approved`` are signed point deltas of the two balances an entry moves.
loyalty_ledger = Table(
    "loyalty_ledger",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("shop_id", Integer, nullable=False),
    Column("customer_id", String(255), nullable=False),
    Column("source_key", String(255), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("pending", BigInteger, nullable=False),
    Column("approved", BigInteger, nullable=False),
    _instant("effective_at", nullable=False),
    _instant("recorded_at", nullable=False),
    Column("order_id", String(255)),
    Column("reason", Text, nullable=False),
    Column("detail", JSON, nullable=False),
    UniqueConstraint("shop_id", "source_key", name="uq_loyalty_ledger_source"),
    Index("ix_loyalty_ledger_customer", "shop_id", "customer_id", "effective_at"),
)

# Added in revision 0004: loyalty inputs that do not come from the platform's records:
# referrals, redemptions, manual adjustments and when a birthday was first seen. The ledger is
# derived from the synced records plus these; ``key`` makes recording one twice a no-op.
loyalty_inputs = Table(
    "loyalty_inputs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("shop_id", Integer, nullable=False),
    Column("key", String(255), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("customer_id", String(255), nullable=False),
    _instant("occurred_at", nullable=False),
    Column("data", JSON, nullable=False),
    UniqueConstraint("shop_id", "key", name="uq_loyalty_inputs_key"),
    Index("ix_loyalty_inputs_customer", "shop_id", "customer_id"),
    Index("ix_loyalty_inputs_kind", "shop_id", "kind"),
)

# Added in revision 0007 (the outbox): one row per (action, sink). A row is written as
# ``pending`` before its sink is called and marked ``done`` with the sink's result after, so
# a run that crashes in between delivers it again and never delivers a ``done`` row twice.
# ``status`` is pending | done | parked (failed too often, or for good) | cancelled (no longer
# wanted: consent withdrawn, customer redacted, discount expired); ``reason`` says why.
outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("shop_id", Integer, nullable=False),
    Column("idempotency_key", String(255), nullable=False),
    Column("sink", String(255), nullable=False),
    Column("stage", Integer, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("customer_id", String(255), nullable=False),
    Column("marketing", Integer, nullable=False),
    Column("model", String(255), nullable=False),
    Column("action", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    _instant("due_at", nullable=False),
    _instant("next_attempt_at", nullable=False),
    _instant("created_at", nullable=False),
    _instant("updated_at", nullable=False),
    _instant("finished_at"),
    Column("result", JSON),
    Column("reason", Text),
    UniqueConstraint("shop_id", "idempotency_key", "sink", name="uq_outbox_key_sink"),
    Index("ix_outbox_status", "status", "next_attempt_at"),
    Index("ix_outbox_customer", "shop_id", "customer_id", "status"),
)

# Added in revision 0007: customers who unsubscribed through shopsync's one-click link. Kept
# apart from ``customers`` because the next sync rewrites that row from the platform, which
# may not know of the unsubscription yet; marketing is withheld while either says no.
suppressions = Table(
    "suppressions",
    metadata,
    Column("shop_id", Integer, primary_key=True),
    Column("customer_id", String(255), primary_key=True),
    Column("channel", String(8), primary_key=True),
    _instant("created_at", nullable=False),
    Column("source", String(64), nullable=False),
)

# Added in revision 0006: product reviews the customer wrote (recorded or imported; platforms
# keep reviews in apps, not in the records shopsync syncs). Review requests skip what a
# customer already reviewed and the reminder is dropped once they review; ``key`` makes
# recording one twice a no-op.
reviews = Table(
    "reviews",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("shop_id", Integer, nullable=False),
    Column("key", String(255), nullable=False),
    Column("customer_id", String(255), nullable=False),
    Column("product_id", String(255), nullable=False),
    Column("order_id", String(255)),
    Column("rating", Integer),
    _instant("reviewed_at", nullable=False),
    Column("source", String(64), nullable=False),
    UniqueConstraint("shop_id", "key", name="uq_reviews_key"),
    Index("ix_reviews_customer", "shop_id", "customer_id", "reviewed_at"),
)

# Added in revision 0008: what the store must not bring back. A "redacted" customer (GDPR
# erasure) is never stored again and the personal fields of their orders stay empty, whatever a
# delayed webhook or a later sync page says; a "deleted" record comes back only in a version
# updated after its deletion (a restore), never from an older delivery that arrives late.
tombstones = Table(
    "tombstones",
    metadata,
    Column("shop_id", Integer, primary_key=True),
    Column("resource", String(16), primary_key=True),
    Column("id", String(255), primary_key=True),
    Column("reason", String(16), nullable=False),
    _instant("at", nullable=False),
)

# Added in revision 0012: customers whose data webhook intake changed, recorded in the same
# transaction as the change; a worker plans them and marks the row handled (``changed_at``
# negated) if ``seq`` is still the one it read, and the settle of an incremental plan that
# read that ``seq`` deletes it. From revision 0026 every write of a row (new or bumped) takes
# the next value of the store's note sequence (:data:`note_counter`), so a ``seq`` names one
# write of one note in the store. See :mod:`shopsync.store.changes`.
changed_customers = Table(
    "changed_customers",
    metadata,
    Column("shop_id", Integer, primary_key=True),
    Column("customer_id", String(255), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    _instant("changed_at", nullable=False),
    Index("ix_changed_customers_at", "changed_at"),
)

NOTE_SEQUENCE = "change_note_seq"
"""PostgreSQL's sequence of note values (revision 0026): ``nextval`` takes one without waiting
for another transaction, which a counter row would make every shop's writers do."""

# Added in revision 0026: SQLite's note sequence, one row (``id`` 1) holding the last value
# handed out; a note write raises it in its own transaction, under SQLite's one writer, so a
# value rolled back was never seen and one committed is never handed out again. PostgreSQL
# takes the values from NOTE_SEQUENCE and leaves this table empty.
note_counter = Table(
    "note_counter",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("value", BigInteger, nullable=False),
)

# Added in revision 0012: per shop, the policy (JSON) of the last ``apply`` that passed one;
# an ``apply`` without a policy checks quiet hours and the frequency cap against it.
delivery_policies = Table(
    "delivery_policies",
    metadata,
    Column("shop_id", Integer, primary_key=True),
    Column("policy", Text, nullable=False),
    _instant("recorded_at", nullable=False),
)

# Added in revision 0010: named leases for work that spans many transactions (one apply per
# store at a time). ``expires_at`` is on the database's clock; a holder that dies stops
# renewing and the next asker takes the lease once it has expired.
leases = Table(
    "leases",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("holder", String(255), nullable=False),
    _instant("acquired_at", nullable=False),
    _instant("expires_at", nullable=False),
)

# Added in revision 0013: the work queue of ``shopsync worker`` (see store/jobs.py). One
# queued job per (kind, shop) at a time (a second enqueue joins it); ``slot`` names the
# schedule period a scheduled job was made for, so that many workers make it once.
jobs = Table(
    "jobs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("shop", String(255), nullable=False),
    Column("payload", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("lock_key", String(300), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("max_attempts", Integer, nullable=False),
    Column("slot", String(64), nullable=True),
    _instant("run_after", nullable=False),
    Column("locked_by", String(255), nullable=True),
    _instant("locked_until"),
    _instant("created_at", nullable=False),
    _instant("finished_at"),
    Column("error", Text, nullable=True),
    Index(
        "uq_jobs_queued",
        "kind",
        "shop",
        unique=True,
        sqlite_where=text("status = 'queued'"),
        postgresql_where=text("status = 'queued'"),
    ),
    Index("uq_jobs_slot", "kind", "shop", "slot", unique=True),
    Index("ix_jobs_status_run_after", "status", "run_after"),
)

# Added in revision 0014 (store/facts.py): orders deleted from the store, with the change
# sequence value of the deletion, so a snapshot refresh drops them too.
fact_deletions = Table(
    "fact_deletions",
    metadata,
    Column("shop_id", Integer, primary_key=True),
    Column("order_id", String(255), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Index("ix_fact_deletions_seq", "shop_id", "seq"),
)

# Added in revision 0014: one row per order-facts snapshot file written (its random token and
# the sequence value it is current to). A file is trusted only while its row is here: a
# database restored from an older backup, another database or a removed shop lacks it.
fact_snapshots = Table(
    "fact_snapshots",
    metadata,
    Column("shop_id", Integer, primary_key=True),
    Column("token", String(64), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    _instant("written_at", nullable=False),
)

# Added in revision 0017 (issue 22): NPS / CSAT answers recorded by the survey app
# (shopsync.surveys). One per survey (``survey_key``, the survey request's idempotency key): a
# second click finds it and changes nothing. ``cohort`` is the month of the customer's first
# order ("2024-03"), kept at answer time so the report's cohorts survive an erasure, which
# empties ``customer_id`` and ``comment`` and keeps the score.
survey_answers = Table(
    "survey_answers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("shop_id", Integer, nullable=False),
    Column("survey_key", String(255), nullable=False),
    Column("customer_id", String(255), nullable=True),
    Column("order_id", String(255), nullable=False),
    Column("scale", String(8), nullable=False),
    Column("score", Integer, nullable=False),
    Column("cohort", String(7), nullable=True),
    Column("comment", Text, nullable=True),
    _instant("answered_at", nullable=False),
    _instant("commented_at"),
    UniqueConstraint("shop_id", "survey_key", name="uq_survey_answers_key"),
    Index("ix_survey_answers_at", "shop_id", "answered_at"),
    Index("ix_survey_answers_customer", "shop_id", "customer_id"),
)

# Added in revision 0016 (issue 22): checkouts shoppers started (Shopify's abandoned checkouts,
# WooCommerce's draft and pending orders), for the abandoned-checkout program. Money in
# ten-thousandths beside ``currency`` like orders; ``lines`` holds the checkout's lines as JSON
# (product, variant, title, quantity and unit price as decimal strings).
checkouts = Table(
    "checkouts",
    metadata,
    Column("shop_id", Integer, primary_key=True),
    Column("id", String(255), primary_key=True),
    Column("customer_id", String(255)),
    Column("email", Text),
    _instant("created_at", nullable=False),
    _instant("updated_at", nullable=False),
    _instant("completed_at"),
    Column("recovery_url", Text),
    Column("currency", String(8), nullable=False),
    _money("subtotal"),
    _money("total"),
    Column("lines", JSON, nullable=False),
    # Added in revision 0020: a second key of the checkout (Shopify: a digest of its token,
    # which deletions and orders name, where ``id`` is its cart token's; Checkout.token_key)
    Column("token_key", String(255)),
    # Added in revision 0020: the platform's own number of the checkout, plain (Shopify: the
    # AbandonedCheckout gid's number, the id a checkouts/delete body names; Checkout.number)
    Column("number", String(255)),
    Index("ix_checkouts_customer", "shop_id", "customer_id", "created_at"),
    Index("ix_checkouts_updated", "shop_id", "updated_at"),
    Index("ix_checkouts_token", "shop_id", "token_key"),
    Index("ix_checkouts_number", "shop_id", "number"),
)

# Added in revision 0016 (issue 22): browse and cart events a storefront posted to shopsync's
# signed event endpoint (:mod:`shopsync.events`), for browse-abandonment reminders. ``event_id``
# (the pixel's own id) makes a replay a no-op; ``customer_id`` is null for a visitor nobody
# identified (kept for the caps and figures, never messaged).
browse_events = Table(
    "browse_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("shop_id", Integer, nullable=False),
    Column("event_id", String(255), nullable=False),
    Column("visitor_id", String(255), nullable=False),
    Column("customer_id", String(255)),
    Column("kind", String(32), nullable=False),
    Column("product_id", String(255)),
    _instant("occurred_at", nullable=False),
    _instant("received_at", nullable=False),
    UniqueConstraint("shop_id", "event_id", name="uq_browse_events_event"),
    Index("ix_browse_events_visitor", "shop_id", "visitor_id", "received_at"),
    Index("ix_browse_events_customer", "shop_id", "customer_id", "occurred_at"),
)

# Added in revision 0015 (store/incremental.py, issue 19): per customer, the next moment time
# alone changes their loyalty notices (an approval, an expiry or its warning, a tier review,
# a birthday; NULL: never), as a settled incremental plan derived it as of ``derived_at``
# with the loyalty settings named by ``settings`` (a digest). A customer without a row, or
# whose row is due, is planned again.
loyalty_due = Table(
    "loyalty_due",
    metadata,
    Column("shop_id", Integer, primary_key=True),
    Column("customer_id", String(255), primary_key=True),
    _instant("due_at"),
    _instant("derived_at", nullable=False),
    Column("settings", String(64), nullable=False),
    # revision 0025: an incremental plan finds the due and the stale rows by index
    Index("ix_loyalty_due_at", "shop_id", "due_at"),
    Index("ix_loyalty_due_tag", "shop_id", "settings", "derived_at"),
)

# Added in revision 0022 (issue 19): per customer, the first moment after ``derived_at`` at
# which time alone can bring a new program candidate (a review request, a win-back stage, a
# replenishment or warranty reminder, ...; NULL: never), as a settled incremental plan derived
# it with the programs' settings, the shop models' version and the catalogue named by
# ``settings`` (a digest). A customer without a row, or whose row is due, is planned again.
program_due = Table(
    "program_due",
    metadata,
    Column("shop_id", Integer, primary_key=True),
    Column("customer_id", String(255), primary_key=True),
    _instant("due_at"),
    _instant("derived_at", nullable=False),
    Column("settings", String(64), nullable=False),
    Index("ix_program_due_at", "shop_id", "due_at"),  # revision 0025, as for loyalty_due
    Index("ix_program_due_tag", "shop_id", "settings", "derived_at"),
)

# Added in revision 0025 (store/incremental.py, issue 19): a shop's row says every customer
# of the shop has a program moment (``programs``), a loyalty moment (``loyalty``), or a
# change note (the erased aside): an incremental plan then finds its candidates from the
# moments' indexes alone, not from every customer. Raised by the settle of a plan that made
# the pass over every customer, after checking it, unless lowered since the settle read
# ``lowered``; lowered (``lowered`` + 1) by a settle that records no loyalty moments and
# when notes are cleared without a settle (:func:`shopsync.store.changes.clear_changes`).
moment_cover = Table(
    "moment_cover",
    metadata,
    Column("shop_id", Integer, primary_key=True),
    Column("programs", Boolean, nullable=False),
    Column("loyalty", Boolean, nullable=False),
    Column("lowered", BigInteger, nullable=False),
)

# Added in revision 0019 (store/shop_models.py, issue 19 item 3): the shop-level models a plan
# uses (the MBG/NBD fit, the also-bought table, learned usage periods, the one-time buyers'
# win-back delay), built from the shop as of ``data_as_of`` and stored as compressed JSON of
# ``format``. ``version`` only grows; ``facts_seq`` is the shop's order-facts sequence read
# before the build, so the orders changed since are those with a larger ``orders.seq``.
shop_models = Table(
    "shop_models",
    metadata,
    Column("shop_id", Integer, primary_key=True),
    Column("version", BigInteger, nullable=False),
    Column("format", Integer, nullable=False),
    Column("settings", String(64), nullable=False),
    _instant("data_as_of", nullable=False),
    _instant("built_at", nullable=False),
    Column("facts_seq", BigInteger, nullable=False),
    Column("customers", BigInteger, nullable=False),
    Column("body", LargeBinary, nullable=False),
)

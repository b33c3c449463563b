"""The generator's catalogue: product categories, names, places, carriers, discount codes
and consent mixes, weighted as a small general store's would be. Data only; the
drawing is in :mod:`.generator`.
"""

from __future__ import annotations

from dataclasses import dataclass

from shopsync.models import ConsentState

__all__ = [
    "ADJECTIVES",
    "CARRIERS",
    "CATALOGUE",
    "CODES",
    "COUNTRIES",
    "EMAIL_CONSENT",
    "FIRST",
    "LAST",
    "PRICE_SCALE",
    "REFUND_NOTES",
    "SMS_CONSENT",
    "STREETS",
    "VENDORS",
    "Category",
]

PRICE_SCALE = {"JPY": 150, "KRW": 1300, "HUF": 350, "ISK": 140, "CLP": 900, "VND": 24000}


@dataclass(frozen=True)
class Category:
    """A kind of product: its nouns, price range, variants, and how often it is re-bought."""

    name: str
    nouns: tuple[str, ...]
    price: tuple[float, float]
    options: tuple[tuple[str, float], ...]
    """Variant titles with price multipliers."""
    usage_days: int | None = None
    warranty_days: int | None = None
    weight: float = 1.0


CATALOGUE = (
    Category(
        "Coffee",
        ("Espresso Blend", "House Roast", "Single Origin", "Decaf"),
        (12, 24),
        (("250 g", 1.0), ("1 kg", 3.2)),
        usage_days=21,
        weight=2.0,
    ),
    Category(
        "Tea",
        ("Green Tea", "Earl Grey", "Chai", "Rooibos"),
        (8, 18),
        (("50 g", 1.0), ("200 g", 3.0)),
        usage_days=45,
    ),
    Category(
        "Skincare",
        ("Face Cream", "Serum", "Cleanser", "Sunscreen"),
        (15, 45),
        (("50 ml", 1.0),),
        usage_days=60,
        weight=1.5,
    ),
    Category(
        "Supplements",
        ("Vitamin D", "Omega 3", "Magnesium", "Protein"),
        (14, 40),
        (("60 caps", 1.0), ("120 caps", 1.8)),
        usage_days=30,
    ),
    Category(
        "Pet Food",
        ("Dog Kibble", "Cat Food", "Treats"),
        (18, 55),
        (("2 kg", 1.0), ("7 kg", 2.9)),
        usage_days=28,
    ),
    Category(
        "Electronics",
        ("Headphones", "Speaker", "Charger", "Smart Lamp"),
        (29, 249),
        (("Black", 1.0), ("White", 1.0)),
        warranty_days=730,
        weight=0.8,
    ),
    Category(
        "Kitchen",
        ("Grinder", "Kettle", "French Press", "Scale"),
        (25, 180),
        (("Standard", 1.0),),
        warranty_days=365,
        weight=0.7,
    ),
    Category(
        "Apparel",
        ("T-Shirt", "Hoodie", "Cap", "Socks"),
        (15, 70),
        (("S", 1.0), ("M", 1.0), ("L", 1.0), ("XL", 1.0)),
        weight=1.2,
    ),
    Category("Home", ("Candle", "Mug", "Blanket", "Vase"), (9, 60), (("Standard", 1.0),)),
)
ADJECTIVES = (
    "Classic",
    "Organic",
    "Premium",
    "Everyday",
    "Nordic",
    "Wild",
    "Pure",
    "Urban",
    "Golden",
    "Daily",
    "Deluxe",
    "Simple",
)
VENDORS = ("Acme Goods", "Northwind", "Bluebird Co", "Fieldstone", "Harbor & Hill")
FIRST = (
    "James",
    "Mary",
    "John",
    "Patricia",
    "Robert",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Daniel",
    "Karen",
    "Lukas",
    "Emma",
    "Noah",
    "Mia",
    "Oliver",
    "Sofia",
    "Liam",
    "Chloe",
    "Lucas",
    "Hannah",
    "Ava",
    "Leon",
    "Yuki",
    "Aiko",
    "Mateo",
    "Lea",
    "Omar",
    "Zara",
    "Ingrid",
    "Pierre",
)
LAST = (
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Wilson",
    "Anderson",
    "Taylor",
    "Thomas",
    "Moore",
    "Martin",
    "Jackson",
    "Lee",
    "White",
    "Harris",
    "Clark",
    "Lewis",
    "Walker",
    "Müller",
    "Schmidt",
    "Dubois",
    "Bernard",
    "Rossi",
    "Tanaka",
    "Sato",
    "Kowalski",
    "Nielsen",
    "Silva",
    "O'Brien",
    "Novak",
    "Costa",
    "Fischer",
    "Weber",
    "Laurent",
)
COUNTRIES = (  # code, weight, tax rate, (city, province, zip pattern) ...
    (
        "US",
        0.60,
        "0.07",
        (
            ("Portland", "OR", "972##"),
            ("Austin", "TX", "787##"),
            ("Brooklyn", "NY", "112##"),
            ("Denver", "CO", "802##"),
        ),
    ),
    ("CA", 0.10, "0.13", (("Toronto", "ON", "M5V #A#"), ("Vancouver", "BC", "V6B #A#"))),
    ("GB", 0.10, "0.20", (("London", None, "EC1A #AA"), ("Leeds", None, "LS1 #AA"))),
    ("DE", 0.08, "0.19", (("Berlin", None, "101##"), ("München", None, "803##"))),
    ("FR", 0.05, "0.20", (("Paris", None, "750##"), ("Lyon", None, "690##"))),
    ("AU", 0.07, "0.10", (("Sydney", "NSW", "20##"), ("Melbourne", "VIC", "30##"))),
)
STREETS = ("Oak", "Maple", "High", "Station", "Park", "Mill", "Church", "Lake", "Hill")
CARRIERS = (
    ("UPS", "https://www.ups.com/track?tracknum={}"),
    ("USPS", "https://tools.usps.com/go/TrackConfirmAction?tLabels={}"),
    ("FedEx", "https://www.fedex.com/fedextrack/?trknbr={}"),
    ("DHL Express", "https://www.dhl.com/en/express/tracking.html?AWB={}"),
)
CODES = (("WELCOME10", "0.10"), ("SAVE15", "0.15"), ("VIP20", "0.20"), ("SPRING10", "0.10"))
REFUND_NOTES = ("Damaged in transit", "Changed mind", "Wrong size", "Goodwill", None)
EMAIL_CONSENT = (
    (ConsentState.SUBSCRIBED, 0.42),
    (ConsentState.NOT_SUBSCRIBED, 0.33),
    (ConsentState.UNSUBSCRIBED, 0.12),
    (ConsentState.PENDING, 0.05),
    (ConsentState.UNKNOWN, 0.08),
)
SMS_CONSENT = (
    (ConsentState.SUBSCRIBED, 0.25),
    (ConsentState.NOT_SUBSCRIBED, 0.55),
    (ConsentState.UNSUBSCRIBED, 0.10),
    (ConsentState.PENDING, 0.05),
    (ConsentState.UNKNOWN, 0.05),
)

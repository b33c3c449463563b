"""Every currency code Shopify or WooCommerce offers, with its number of decimals.

Sources, per group (checked 2026-12):

- ISO 4217's current list and its minor units (the standard's list, 2024 edition);
- ISO 4217 codes since withdrawn that a platform still offers, with the minor units ISO gave
  them: BYR 0, HRK 2, LTL 2, LVL 2, MRO 2, STD 2, VEF 2. WooCommerce's
  ``get_woocommerce_currencies()`` (woocommerce/includes/wc-core-functions.php) lists BYR,
  HRK and VEF; its 3.x lists had MRO and STD (replaced by MRU and STN, but a store set up
  then keeps its ``woocommerce_currency`` option); Shopify's ``CurrencyCode`` enum (GraphQL
  Admin API, shopify.dev 2024-04 .. 2026-07) lists HRK, LTL, LVL and, until 2024-04, BYR,
  STD and VEF;
- codes outside ISO 4217. WooCommerce offers BTC, GGP, IMP, IRT, JEP, PRB; Shopify offers
  JEP, KID and USDC. Their decimals: BTC 8 (the satoshi, 10^-8 BTC, Bitcoin's own smallest
  unit), USDC 6 (the token's decimals as Circle issues it); GGP, IMP and JEP 2 (pound
  sterling at par, 100 pence), KID 2 (Kiribati dollar at par with AUD, 100 cents), PRB 2
  (100 kopecks); IRT 2: no standard exists, so WooCommerce's own default
  (``wc_get_price_decimals()``: option ``woocommerce_price_num_decimals``, default 2).

:data:`DECIMALS` holds the currency's own figure; :data:`EXPONENTS` what shopsync rounds
amounts to: the same, but never finer than the 4 places the store keeps (BTC and USDC round
to 0.0001; a finer amount is refused by :class:`shopsync.models.Money`, with that reason).
"""

from __future__ import annotations

_STORE_PLACES = 4  # models.MONEY_DECIMALS / store.schema.MONEY_SCALE

_ZERO = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_THREE = "BHD IQD JOD KWD LYD OMR TND"
_FOUR = "CLF UYW"
_TWO = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP "
    "BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR "
    "FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW "
    "KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN "
    "NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD "
    "SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU "
    "UZS VED VES WST XCD XCG YER ZAR ZMW ZWG ZWL"
)
_WITHDRAWN = {"BYR": 0, "HRK": 2, "LTL": 2, "LVL": 2, "MRO": 2, "STD": 2, "VEF": 2}
_NON_ISO = {
    "BTC": 8,
    "GGP": 2,
    "IMP": 2,
    "IRT": 2,
    "JEP": 2,
    "KID": 2,
    "PRB": 2,
    "USDC": 6,
}

DECIMALS: dict[str, int] = {
    **{code: 2 for code in _TWO.split()},
    **{code: 0 for code in _ZERO.split()},
    **{code: 3 for code in _THREE.split()},
    **{code: 4 for code in _FOUR.split()},
    **_WITHDRAWN,
    **_NON_ISO,
}
"""The currency's own number of decimals (minor-unit digits), per the sources above."""

EXPONENTS: dict[str, int] = {code: min(d, _STORE_PLACES) for code, d in DECIMALS.items()}
"""Decimals shopsync rounds an amount of the currency to: its own, at most the store's 4."""

NOT_CURRENCIES: dict[str, str] = {
    "XXX": "ISO 4217's code for 'no currency' (Shopify's unrecognised currency)",
    "XTS": "ISO 4217's code reserved for testing",
}
"""Codes that look like currencies and are not; refused with this reason."""

_WOO = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTC "
    "BTN BWP BYR BYN BZD CAD CDF CHF CLP CNY COP CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN "
    "ETB EUR FJD FKP GBP GEL GGP GHS GIP GMD GNF GTQ GYD HKD HNL HRK HTG HUF IDR ILS IMP INR "
    "IQD IRR IRT ISK JEP JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL "
    "LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR "
    "PAB PEN PGK PHP PKR PLN PRB PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLL SOS "
    "SRD SSP STN SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VEF VES VND "
    "VUV WST XAF XCD XOF XPF YER ZAR ZMW "
    # WooCommerce 3.x listed these before MRU and STN replaced them
    "MRO STD"
)
WOOCOMMERCE_CODES = frozenset(_WOO.split())
"""``get_woocommerce_currencies()`` (woocommerce/includes/wc-core-functions.php)."""

_SHOPIFY = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN "
    "BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP "
    "GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HRK HTG HUF IDR ILS INR IQD IRR ISK JEP JMD JOD "
    "JPY KES KGS KHR KID KMF KRW KWD KYD KZT LAK LBP LKR LRD LSL LTL LVL LYD MAD MDL MGA MKD "
    "MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR "
    "PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLL SOS SRD SSP STN SYP SZL THB "
    "TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USDC UYU UZS VED VES VND VUV WST XAF XCD "
    "XOF XPF XXX YER ZAR ZMW "
    # in the enum until 2024-04 (deprecated, then removed)
    "BYR STD VEF"
)
SHOPIFY_CODES = frozenset(_SHOPIFY.split())
"""The GraphQL Admin API's ``CurrencyCode`` enum (shopify.dev, 2026-07; older values noted)."""


def exponent(code: str) -> int:
    """Decimals shopsync rounds amounts of ``code`` to; KeyError if it is not a currency."""
    return EXPONENTS[code]


def refusal(code: object) -> str:
    """Why ``code`` is not a currency, in one sentence for an error message."""
    if isinstance(code, str) and code.strip().upper() in NOT_CURRENCIES:
        return f"{code!r} is not a currency: {NOT_CURRENCIES[code.strip().upper()]}"
    return (
        f"{code!r} is not a currency code Shopify or WooCommerce offers"
        " (ISO 4217, a retired code, or a platform's own such as BTC or IRT)"
    )

"""``shopsync.toml``: the store, the shops and the policy, with the credentials kept out.

::

    secrets_file = "~/.config/shopsync/secrets.toml"   # for secret: references (optional)

    [store]
    url = "sqlite:///shopsync.db"          # a relative SQLite path is relative to this file

    [shops.main]
    platform = "shopify"
    shop = "acme.myshopify.com"
    access_token = "env:SHOPIFY_TOKEN"     # read from the environment when used

    [shops.outlet]
    platform = "woocommerce"
    url = "https://outlet.example"
    consumer_key = "env:WOO_KEY"
    consumer_secret = "secret:outlet_secret"   # read from the secrets file when used
    write_back = false                     # sync only: apply never writes to this shop
    retry = { attempts = 3 }               # fail faster than the default 8 attempts

    [policy]                               # the retention policy, or: policy = "retention.toml"
    currency = "EUR"

A shop's keys other than ``platform``, ``write_back`` and ``retry`` are the adapter's own
settings (``shopsync.connect(platform, **settings)``). A credential (a key naming a token,
secret, password or key) must be an ``env:NAME`` or ``secret:NAME`` reference: a literal
value is refused, so the file can be committed. References are resolved only when a shop is
used, so one shop's missing variable does not stop another's sync; resolved credentials are
:class:`pydantic.SecretStr` and never appear in a repr, a message or a log line.
"""

from __future__ import annotations

import inspect
import os
import re
import stat
import sys
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from shopsync._urls import password_problem
from shopsync.adapter import Adapter, adapter_class, available_adapters, connect
from shopsync.core.policy import Policy, PolicyError
from shopsync.errors import ConfigurationError
from shopsync.http import RetryPolicy

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "CONFIG_FILE",
    "DEFAULT_SECRETS_FILE",
    "DEFAULT_STORE_URL",
    "Config",
    "RetrySettings",
    "ShopConfig",
    "StoreConfig",
    "WorkerConfig",
    "WorkerShop",
    "dereference",
    "is_credential",
    "load_config",
    "parse_config",
]

CONFIG_FILE = "shopsync.toml"
DEFAULT_STORE_URL = "sqlite:///shopsync.db"
DEFAULT_SECRETS_FILE = "~/.config/shopsync/secrets.toml"

_CREDENTIAL = re.compile(r"token|secret|password|passwd|(^|_)key$", re.IGNORECASE)
_SHOP_KEYS = ("platform", "write_back", "retry")
Setting = str | int | float | bool


def is_credential(key: str) -> bool:
    """Whether a setting named ``key`` holds a credential (and so must be a reference)."""
    return bool(_CREDENTIAL.search(key))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetrySettings(_Model):
    """Overrides of :class:`shopsync.http.RetryPolicy` for one shop."""

    attempts: int = Field(RetryPolicy.attempts, ge=1)
    max_elapsed: float = Field(RetryPolicy.max_elapsed, gt=0)
    initial_wait: float = Field(RetryPolicy.initial_wait, ge=0)
    max_wait: float = Field(RetryPolicy.max_wait, ge=0)

    def policy(self) -> RetryPolicy:
        return RetryPolicy(**{f.name: getattr(self, f.name) for f in fields(RetryPolicy)})


class StoreConfig(_Model):
    url: str = DEFAULT_STORE_URL
    """Store URL, or an ``env:NAME`` reference (a PostgreSQL URL with a password must be)."""


class ShopConfig(_Model):
    """One ``[shops.<name>]`` table."""

    name: str
    platform: str
    write_back: bool = True
    """Whether ``shopsync apply`` writes to this shop (tags, codes, points); needs write access."""
    retry: RetrySettings | None = None
    settings: dict[str, Setting] = {}
    """The adapter's settings as written: credentials are still ``env:``/``secret:`` references."""
    secrets_file: Path | None = None

    def resolve(self) -> dict[str, Any]:
        """The adapter settings with every reference read; credentials as SecretStr."""
        resolved: dict[str, Any] = {}
        for key, value in self.settings.items():
            where = f"shops.{self.name}.{key}"
            if isinstance(value, str) and value.startswith(("env:", "secret:")):
                text = dereference(value, where, self.secrets_file)
                resolved[key] = SecretStr(text) if is_credential(key) else text
            else:
                resolved[key] = value
        return resolved

    def connect(self) -> Adapter:
        """The shop's adapter, built from the resolved settings (no request is sent yet)."""
        factory = adapter_class(self.platform)
        accepted = _parameters(factory)
        settings = self.resolve()
        for key, value in settings.items():
            wants_secret = "SecretStr" in str(getattr(accepted.get(key), "annotation", ""))
            if isinstance(value, SecretStr) and not wants_secret:
                settings[key] = value.get_secret_value()
        if self.retry is not None and "retry_policy" in accepted:
            settings["retry_policy"] = self.retry.policy()
        return connect(self.platform, **settings)


class WorkerShop(_Model):
    """``[worker.shops.<name>]``: one shop's schedule, where it differs from ``[worker]``."""

    timezone: str | None = None
    apply_hour: int | None = Field(None, ge=0, le=23)
    sync_every: float | None = Field(None, gt=0)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return _known_zone(value)


JOB_KINDS = ("sync", "apply", "changes")
"""Jobs ``shopsync worker`` runs. ``sync``: incremental sync of the shop. ``apply``: loyalty,
plan and apply of the shop. ``changes``: plan and apply the customers webhooks changed, then
clear their notes. Kept here, not in :mod:`shopsync.worker`, so the CLI's help loads no store."""


class WorkerConfig(_Model):
    """``[worker]``: what ``shopsync worker`` runs and when (docs/scaling.md)."""

    sync_every: float = Field(15.0, gt=0)
    """Minutes between two incremental syncs of a shop."""
    apply_hour: int = Field(6, ge=0, le=23)
    """Hour of the shop's local day when loyalty, plan and apply run (once a day)."""
    timezone: str = "UTC"
    """The shops' local time zone (IANA name), unless ``[worker.shops.<name>]`` says."""
    job_ttl: float = Field(60.0, ge=2)
    """Seconds a dead worker's job stays locked before another worker retries it."""
    max_attempts: int = Field(5, ge=1)
    """Tries of a job that keeps failing with a retryable error, or whose worker dies."""
    jsonl: str | None = None
    """Also append each shop's actions to this JSON Lines file (``{shop}`` is replaced)."""
    shops: dict[str, WorkerShop] = {}

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return _known_zone(value) or "UTC"


def _known_zone(value: str | None) -> str | None:
    if value is None:
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not an IANA time zone (e.g. Europe/Paris)") from None
    return value


class Config(_Model):
    """A loaded ``shopsync.toml`` (see the module docstring)."""

    path: Path | None = None
    store: StoreConfig = StoreConfig()
    shops: dict[str, ShopConfig] = {}
    policy: Policy | None = None
    secrets_file: Path | None = None
    worker: WorkerConfig = WorkerConfig()

    def shop(self, name: str) -> ShopConfig:
        """The shop configured as ``name``."""
        if name not in self.shops:
            listed = ", ".join(sorted(self.shops)) or "none"
            raise ConfigurationError(
                f"no shop named {name!r} in {self._where()} (configured: {listed}); "
                f"add a [shops.{name}] table or use one of those names"
            )
        return self.shops[name]

    def store_url(self) -> str:
        """The store URL, with an ``env:`` reference read."""
        url = self.store.url
        if url.startswith(("env:", "secret:")):
            url = dereference(url, "store.url", self.secrets_file)
        return url

    def _where(self) -> str:
        return str(self.path) if self.path else "the configuration"


def load_config(path: str | Path) -> Config:
    """Read and check ``path``; a :class:`ConfigurationError` names the file and every key
    at fault (``shopsync.toml: shops.main.platform: ...``)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigurationError(
            f"configuration file {str(path)!r} does not exist: create it (see docs/config.md) "
            "or pass --config with the right path"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read configuration file {str(path)!r}: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(
            f"{path} is not valid TOML: {exc}; fix the file at that line"
        ) from None
    return parse_config(data, path=path)


def parse_config(data: Mapping[str, Any], *, path: Path | None = None) -> Config:
    """A :class:`Config` from parsed TOML; relative paths are relative to ``path``'s folder."""
    where = str(path) if path else "configuration"
    base = path.resolve().parent if path else Path.cwd()
    problems: list[str] = []
    raw = dict(data)
    policy = _policy(raw.pop("policy", None), base, problems)
    secrets_file = raw.pop("secrets_file", None)
    if secrets_file is not None and not isinstance(secrets_file, str):
        problems.append("secrets_file: must be a path (a string)")
        secrets_file = None
    secrets = _path(secrets_file, base) if secrets_file else None
    tables = raw.pop("shops", {})
    if not isinstance(tables, dict):
        problems.append("shops: must be a table of [shops.<name>] tables")
        tables = {}
    shops = {}
    for name, table in tables.items():
        shop = _shop(name, table, secrets, problems)
        if shop is not None:
            shops[name] = shop
    config = None
    try:
        config = Config.model_validate(
            {**raw, "path": path, "shops": shops, "policy": policy, "secrets_file": secrets}
        )
    except ValidationError as exc:
        problems.extend(_problems(exc))
    if config is not None:
        problems.extend(_store_problems(config.store.url))
    if problems or config is None:
        raise ConfigurationError(f"{where}: " + "; ".join(problems))
    if path is not None:
        store = config.store.model_copy(update={"url": _anchor_sqlite(config.store.url, base)})
        config = config.model_copy(update={"store": store})
    return config


def _shop(name: str, table: Any, secrets: Path | None, problems: list[str]) -> ShopConfig | None:
    prefix = f"shops.{name}"
    if not isinstance(table, dict):
        problems.append(f"{prefix}: must be a table ([shops.{name}])")
        return None
    settings = {k: v for k, v in table.items() if k not in _SHOP_KEYS}
    count = len(problems)
    for key, value in settings.items():
        if not isinstance(value, (str, int, float, bool)):
            problems.append(f"{prefix}.{key}: must be a string, number or boolean")
        elif is_credential(key) and not (
            isinstance(value, str) and value.startswith(("env:", "secret:"))
        ):
            variable = f"{name}_{key}".upper().replace("-", "_")
            problems.append(
                f"{prefix}.{key}: credentials are never written in the file; use "
                f'{key} = "env:{variable}" (an environment variable) or '
                f'{key} = "secret:{name}_{key}" (an entry of the secrets file)'
            )
        elif isinstance(value, str) and value in ("env:", "secret:"):
            problems.append(f"{prefix}.{key}: {value!r} names nothing after the colon")
    try:
        shop = ShopConfig.model_validate(
            {
                "name": name,
                **{k: table[k] for k in _SHOP_KEYS if k in table},
                "settings": settings,
                "secrets_file": secrets,
            }
        )
    except ValidationError as exc:
        problems.extend(_problems(exc, prefix))
        return None
    if shop.platform not in available_adapters():
        listed = ", ".join(available_adapters()) or "none"
        problems.append(
            f"{prefix}.platform: no shopsync adapter named {shop.platform!r} is installed "
            f"(installed: {listed})"
        )
        return None
    problems.extend(_setting_problems(shop, prefix))
    return shop if len(problems) == count else None


def _parameters(factory: Any) -> dict[str, inspect.Parameter]:
    try:
        return dict(inspect.signature(factory).parameters)
    except (TypeError, ValueError):
        return {}


def _settable(parameter: inspect.Parameter) -> bool:
    """Whether TOML can express the parameter (a string, number or boolean, not a callable)."""
    if parameter.kind not in (parameter.KEYWORD_ONLY, parameter.POSITIONAL_OR_KEYWORD):
        return False
    annotation = str(parameter.annotation)
    if parameter.annotation is inspect.Parameter.empty:
        return True
    return "Callable" not in annotation and bool(re.search(_SCALAR, annotation))


_SCALAR = re.compile(r"\b(str|int|float|bool|SecretStr)\b")


def _setting_problems(shop: ShopConfig, prefix: str) -> list[str]:
    """Names the adapter does not take, and required ones the table lacks."""
    accepted = _parameters(adapter_class(shop.platform))
    if not accepted or any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
        return []
    named = [n for n, p in accepted.items() if _settable(p)]
    problems = [
        f"{prefix}.{key}: the {shop.platform} adapter has no setting {key!r} "
        f"(its settings: {', '.join(named)})"
        for key in shop.settings
        if key not in named
    ]
    problems += [
        f"{prefix}.{key}: required by the {shop.platform} adapter"
        for key in named
        if accepted[key].default is inspect.Parameter.empty and key not in shop.settings
    ]
    return problems


def _policy(value: Any, base: Path, problems: list[str]) -> Policy | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return Policy.from_toml(_path(value, base))
        except PolicyError as exc:
            problems.append(f"policy: {exc}")
            return None
    if not isinstance(value, dict):
        problems.append("policy: must be a [policy] table or the path of a policy file")
        return None
    try:
        return Policy.model_validate(value)
    except ValidationError as exc:
        problems.extend(_problems(exc, "policy"))
        return None


def _problems(exc: ValidationError, prefix: str = "") -> list[str]:
    out = []
    for error in exc.errors():
        key = ".".join([prefix] * bool(prefix) + [str(part) for part in error["loc"]])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "not a known key (a typo?)"
        out.append(f"{key or '(top level)'}: {message}")
    return out


def _store_problems(url: str) -> list[str]:
    if url.startswith(("env:", "secret:")):
        return []
    from shopsync.store.urls import is_database_url

    if not is_database_url(url):
        return [f"store.url: {url!r} is not a database URL (e.g. sqlite:///shopsync.db)"]
    problem = password_problem(url, "store.url")
    return [problem] if problem else []


def _anchor_sqlite(url: str, base: Path) -> str:
    """A relative SQLite path made relative to the configuration file's folder."""
    prefix, sep, database = url.partition(":///")
    if not (prefix.startswith("sqlite") and sep) or not database or database.startswith("/"):
        return url
    if database.startswith((":memory:", "file:")):
        return url
    return f"{prefix}:///{base / database}"


def _path(value: str, base: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def dereference(reference: str, where: str, secrets_file: Path | None) -> str:
    """The value an ``env:NAME`` or ``secret:NAME`` reference names (``where`` says, in an
    error, which setting asked for it)."""
    kind, _, name = reference.partition(":")
    if kind == "env":
        value = os.environ.get(name)
        if value is None:
            raise ConfigurationError(
                f"{where} names the environment variable ${name}, which is not set; "
                f"export {name}=... before running shopsync"
            )
        if not value:
            raise ConfigurationError(f"{where} names ${name}, which is empty")
        return value
    path = secrets_file or Path(DEFAULT_SECRETS_FILE).expanduser()
    data = _secrets(path, where)
    found: Any = data.get(name)
    if found is None and "." in name:  # secret:shopify.token reads token in [shopify]
        found = data
        for part in name.split("."):
            found = found.get(part) if isinstance(found, Mapping) else None
    if not isinstance(found, str) or not found:
        raise ConfigurationError(
            f"{where} names the secret {name!r}, which the secrets file {path} does not hold; "
            f'add {name} = "..." to it'
        )
    return found


def _secrets(path: Path, where: str) -> dict[str, Any]:
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigurationError(
            f"{where} names a secret, but the secrets file {path} does not exist; create it "
            "(chmod 600) or set secrets_file in shopsync.toml"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read the secrets file {path}: {exc}") from None
    if os.name == "posix" and mode & (stat.S_IROTH | stat.S_IWOTH):
        raise ConfigurationError(
            f"the secrets file {path} is readable or writable by every user of this machine "
            f"(mode {stat.filemode(mode)}); restrict it with: chmod 600 {path}"
        )
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # The decoder's message quotes no value, only where it stopped.
        raise ConfigurationError(f"the secrets file {path} is not valid TOML: {exc}") from None

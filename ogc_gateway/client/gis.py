"""Registered GIS connections (`register_gis` / `unregister_gis`) and the tokens they give.

A registration is a name for a server's `…/arcgis` root (or a portal's `…/sharing/rest`) and the
credentials that obtain tokens from its `generateToken`. Spark runs Python data sources in worker
processes, not in the driver's interpreter, so a registration kept only in the driver's memory would
be invisible there: it is kept in a small per-user JSON file, `~/.config/ogc-gateway/gis.json`
(`$OGC_GATEWAY_GIS_FILE` moves it), created with mode 0600 in a 0700 folder, like ~/.pgpass or
~/.netrc. The password lives in that file in clear text, protected by its permissions only: on a
machine whose administrators you do not trust, pass a `token` instead of registering a GIS.

Tokens are generated with `client=referer` by default (the referer is sent with every request), so a
token taken on a Spark driver is also valid from executors on other hosts, which `client=requestip`
would not allow. Each process keeps its tokens in memory and asks for a new one shortly before the
old one expires (or when the server says it expired).
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .http import ImageServiceError, json_of, make_session

ENV_FILE = "OGC_GATEWAY_GIS_FILE"
ARCGIS_ONLINE = "https://www.arcgis.com/sharing/rest"
DEFAULT_REFERER = "https://ogc-gateway.invalid/client"
RENEW_MARGIN_S = 120.0          # a token is renewed this long before it expires …
RENEW_FRACTION = 0.2            # … or when less than this fraction of its life is left, if sooner


@dataclass(frozen=True)
class GisRegistration:
    name: str
    url: str
    username: str
    password: str
    client: str = "referer"                 # referer | requestip
    referer: str = DEFAULT_REFERER
    expiration: int = 60                    # minutes asked for each token
    verify: bool = True                     # TLS certificate check

    @property
    def token_url(self) -> str:
        """`{url}/tokens/generateToken` on ArcGIS Server; `{url}/generateToken` on a portal."""
        base = self.url.rstrip("/")
        return base + ("/generateToken" if base.endswith("/sharing/rest") else "/tokens/generateToken")

    @property
    def headers(self) -> dict:
        return {"Referer": self.referer} if self.client == "referer" else {}


def registry_path() -> Path:
    env = os.environ.get(ENV_FILE)
    if env:
        return Path(env).expanduser()
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "ogc-gateway" / "gis.json"


_lock = threading.Lock()


def _read() -> dict:
    path = registry_path()
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise ValueError(f"{path}: not a GIS registry file ({exc})") from None
    return data if isinstance(data, dict) else {}


def _write(data: dict) -> None:
    """Atomically, never readable by others (the file holds passwords)."""
    path = registry_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=".gis.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def register_gis(name: str, url: str | None = None, username: str | None = None, password: str | None = None,
                 *, client: str = "referer", referer: str = DEFAULT_REFERER, expiration: int = 60,
                 verify: bool = True) -> GisRegistration:
    """Register a GIS once under `name`: `url` is the server's `…/arcgis` root (default: ArcGIS
    Online's sharing API). A first token is generated now, so wrong credentials fail here, not in
    the middle of a Spark job. A name already registered is an error (`unregister_gis` it first)."""
    if not name or not isinstance(name, str):
        raise ValueError("a GIS needs a name")
    if not username or password is None:
        raise ValueError("register_gis needs username and password")
    if client not in ("referer", "requestip"):
        raise ValueError("client must be 'referer' or 'requestip'")
    reg = GisRegistration(name, (url or ARCGIS_ONLINE).rstrip("/"), username, password, client, referer,
                          int(expiration), bool(verify))
    with _lock:
        data = _read()
        if name in data:
            raise ValueError(f"a GIS named {name!r} is already registered; unregister_gis({name!r}) first")
        TOKENS.token(reg, force=True)
        data[name] = asdict(reg)
        _write(data)
    return reg


def unregister_gis(name: str) -> None:
    """Forget a registered GIS (and its tokens in this process); an unknown name is an error."""
    with _lock:
        data = _read()
        if name not in data:
            raise KeyError(f"no GIS named {name!r} is registered")
        del data[name]
        _write(data)
    TOKENS.forget(name)


def registered_gis() -> list[str]:
    return sorted(_read())


def get_gis(name: str) -> GisRegistration:
    entry = _read().get(name)
    if entry is None:
        raise KeyError(f"no GIS named {name!r} is registered (register_gis first; registry: {registry_path()})")
    return GisRegistration(**entry)


class TokenCache:
    """Tokens per registration in this process, renewed before they expire."""

    def __init__(self):
        self._tokens: dict[str, tuple[str, float, float]] = {}      # name -> (token, got, expires)
        self._lock = threading.Lock()
        self._session = None

    def token(self, reg: GisRegistration, force: bool = False) -> str:
        with self._lock:
            now = time.time()
            held = self._tokens.get(reg.name)
            if held and not force:
                token, got, expires = held
                margin = min(RENEW_MARGIN_S, RENEW_FRACTION * (expires - got))
                if now < expires - margin:
                    return token
            token, expires = generate_token(reg, self._http())
            self._tokens[reg.name] = (token, now, expires)
            return token

    def forget(self, name: str) -> None:
        with self._lock:
            self._tokens.pop(name, None)

    def _http(self):
        if self._session is None:
            self._session = make_session(workers=1)
        return self._session


def generate_token(reg: GisRegistration, session) -> tuple[str, float]:
    """POST generateToken → (token, expiry as epoch seconds)."""
    form = {"username": reg.username, "password": reg.password, "client": reg.client,
            "expiration": str(reg.expiration), "f": "json"}
    if reg.client == "referer":
        form["referer"] = reg.referer
    resp = session.post(reg.token_url, data=form, headers=reg.headers, timeout=60, verify=reg.verify)
    body = json_of(resp)
    token = body.get("token")
    if not token:
        raise ImageServiceError(498, f"{reg.token_url} gave no token", [json.dumps(body)[:200]], reg.token_url)
    expires = body.get("expires")
    expires = float(expires) / 1000.0 if expires else time.time() + 60 * reg.expiration
    return str(token), expires


TOKENS = TokenCache()


class Credentials:
    """What a request needs to be authorised: a fixed token, a registered GIS (tokens renewed as
    they expire), or nothing. Picklable, so Spark can ship it to executors: a registration travels
    with its password (see the module's docstring)."""

    def __init__(self, token: str | None = None, gis: str | GisRegistration | None = None):
        if token and gis:
            raise ValueError("give token or gis, not both")
        self.fixed = token or None
        self.gis = get_gis(gis) if isinstance(gis, str) else gis

    def token(self, force: bool = False) -> str | None:
        if self.gis is not None:
            return TOKENS.token(self.gis, force=force)
        return self.fixed

    @property
    def renewable(self) -> bool:
        return self.gis is not None

    @property
    def headers(self) -> dict:
        return self.gis.headers if self.gis is not None else {}

    @property
    def verify(self) -> bool:
        return self.gis.verify if self.gis is not None else True

"""A secured configuration over the analytic data sets (tests/synth.py), built through the real
validator from YAML-shaped values, with users and API keys written by the users-file code:

    dem     access: public
    mosaic  access: [analyst]
    ts      (no access key): any signed-in user

users: alice (analyst), bob (viewer), root (admin); keys: k-analyst (analyst), k-viewer (viewer)."""

from __future__ import annotations

import base64
import time
from pathlib import Path

from ogc_gateway.config import config_from_dict
from ogc_gateway.security import store, tokens
from ogc_gateway.security.passwords import hash_password

PASSWORDS = {"alice": "alice-password", "bob": "bob-password", "root": "root-password"}
ROLES = {"alice": ("analyst",), "bob": ("viewer",), "root": ("admin",)}
SECRET = "s" * 20 + "ecret-for-the-tests-only-0123456789"


def make_secure_config(data_dir: Path, folder: Path, *, keys: dict[str, str] | None = None, **security):
    """The config (file `folder/gateway.yaml`, never written: validated from the dict) and the API keys."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "secret.key").write_text(SECRET)
    created = {}
    with store.editing(folder / "users.yaml") as ids:
        for name, password in PASSWORDS.items():
            ids.users[name] = store.User(name, hash_password(password), ROLES[name])
        for name, roles in {"k-analyst": ("analyst",), "k-viewer": ("viewer",)}.items():
            created[name] = store.new_key()
            ids.keys[name] = store.ApiKey(name, store.key_digest(created[name]), roles, int(time.time() * 1000))
    limits = {"max_image_width": 4100, "max_image_height": 4100}
    raw = {
        "server": {"cache_dir": str(folder / "cache"), **limits},
        "security": {"secret_file": "secret.key", "users_file": "users.yaml", **security},
        "services": {
            "dem": {"title": "Analytic DEM", "sources": str(data_dir / "dem" / "*.tif"),
                    "default_resampling": "Nearest", "access": "public"},
            "mosaic": {"title": "Analytic mosaic", "sources": str(data_dir / "mosaic" / "*.tif"),
                       "catalog": str(data_dir / "mosaic" / "catalog.csv"), "time_field": "acquired",
                       "default_band_ids": [2, 1, 0], "default_resampling": "Nearest", "access": ["analyst"]},
            "ts": {"title": "Monthly series", "sources": str(data_dir / "ts" / "*.tif"),
                   "catalog": str(data_dir / "ts" / "times.csv"), "time_field": "date", "end_time_field": "date_end",
                   "default_resampling": "Nearest"},
        },
    }
    return config_from_dict(raw, folder / "gateway.yaml"), created


def basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def forged_token(user: str, roles, minutes: int = 60, binding: str = "", secret: str = SECRET) -> str:
    """A token made directly with the token code (expired ones, bound ones, other secrets)."""
    return tokens.issue(secret.encode(), tokens.Claims(user, tuple(roles), tokens.now_ms() + minutes * 60_000, binding))

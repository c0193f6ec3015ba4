"""`ogc-gateway users …` and `ogc-gateway keys …`: edit the users file of a configuration's
`security` section. A running server picks up every change at the next sign-in (no restart)."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime

import click

from ..cli_common import CONFIG_HELP, load, user_errors
from ..engine import ConfigError
from . import store
from .passwords import hash_password

MIN_PASSWORD = 8


def _users_file(config_file: str | None):
    config = load(config_file)
    if config.security is None:
        raise ConfigError([f"{config.path}: no 'security' section, so every service is public and there are "
                           "no users; add one (see the README's Security section)"])
    return config.security.users_file


def _roles(roles: tuple[str, ...]) -> tuple[str, ...]:
    bad = [r for r in roles if not store.valid_role(r)]
    if bad:
        raise click.BadParameter(f"{', '.join(map(repr, bad))}: a role is letters, digits, '_', '-', '.'",
                                 param_hint="--role")
    return tuple(dict.fromkeys(roles))


def _when(ms: int | None) -> str:
    if ms is None:
        return "never"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _guarded(action):
    with user_errors():
        try:
            return action()
        except store.StoreError as exc:
            raise ConfigError([str(exc)]) from None


@click.group()
def users() -> None:
    """Manage the users who may sign in (password hashes only are stored)."""


@users.command("add")
@click.argument("name")
@click.option("--role", "roles", multiple=True, required=True, metavar="ROLE",
              help="A role (repeatable): a name listed in a service's `access`, or admin.")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@click.option("--config", "config_file", metavar="FILE", help=CONFIG_HELP)
def users_add(name: str, roles: tuple[str, ...], password_stdin: bool, config_file: str | None) -> None:
    """Add user NAME (or replace its password and roles)."""
    if not store.valid_name(name):
        raise click.BadParameter("a user name is printable, without ':' or surrounding spaces", param_hint="NAME")
    roles = _roles(roles)
    path = _guarded(lambda: _users_file(config_file))
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt(f"Password for {name}", hide_input=True, confirmation_prompt=True)
    if len(password) < MIN_PASSWORD:
        click.echo(f"error: a password needs at least {MIN_PASSWORD} characters", err=True)
        sys.exit(1)
    hashed = hash_password(password)

    def change():
        with store.editing(path) as ids:
            existed = name in ids.users
            ids.users[name] = store.User(name, hashed, roles)
        return existed
    existed = _guarded(change)
    click.echo(f"{'Updated' if existed else 'Added'} user {name} (roles: {', '.join(roles)}) in {path}")


@users.command("remove")
@click.argument("name")
@click.option("--config", "config_file", metavar="FILE", help=CONFIG_HELP)
def users_remove(name: str, config_file: str | None) -> None:
    """Remove user NAME; its tokens stop working at once."""
    _take_out(config_file, "users", name, "user")
    click.echo(f"Removed user {name}")


@users.command("list")
@click.option("--config", "config_file", metavar="FILE", help=CONFIG_HELP)
def users_list(config_file: str | None) -> None:
    """List the users and their roles (tab-separated)."""
    path = _guarded(lambda: _users_file(config_file))
    ids = _guarded(lambda: store.load(path))
    click.echo("name\troles")
    for user in sorted(ids.users.values(), key=lambda u: u.name):
        click.echo(f"{user.name}\t{','.join(user.roles)}")


@click.group()
def keys() -> None:
    """Manage API keys (for scripts and services; only a digest of each key is stored)."""


@keys.command("create")
@click.option("--name", required=True, help="A name for the key (used to list and revoke it).")
@click.option("--role", "roles", multiple=True, required=True, metavar="ROLE", help="A role (repeatable).")
@click.option("--expires-days", type=click.IntRange(1, 36500), help="Days until the key stops working "
                                                                    "(default: never).")
@click.option("--config", "config_file", metavar="FILE", help=CONFIG_HELP)
def keys_create(name: str, roles: tuple[str, ...], expires_days: int | None, config_file: str | None) -> None:
    """Create an API key and print it once: it cannot be shown again."""
    if not store.valid_name(name):
        raise click.BadParameter("a key name is printable, without ':' or surrounding spaces", param_hint="--name")
    roles = _roles(roles)
    path = _guarded(lambda: _users_file(config_file))
    secret = store.new_key()
    now = int(time.time() * 1000)
    expires = now + expires_days * 86_400_000 if expires_days else None

    def change():
        with store.editing(path) as ids:
            if name in ids.keys:
                return False
            ids.keys[name] = store.ApiKey(name, store.key_digest(secret), roles, now, expires)
            return True
    if not _guarded(change):
        click.echo(f"error: a key named {name!r} exists; revoke it first", err=True)
        sys.exit(1)
    click.echo(f"API key {name} (roles: {', '.join(roles)}; expires: {_when(expires)}). "
               "Store it now; it is not shown again:", err=True)
    click.echo(secret)


@keys.command("list")
@click.option("--config", "config_file", metavar="FILE", help=CONFIG_HELP)
def keys_list(config_file: str | None) -> None:
    """List the API keys (name, roles, created, expires; never the key)."""
    path = _guarded(lambda: _users_file(config_file))
    ids = _guarded(lambda: store.load(path))
    click.echo("name\troles\tcreated\texpires")
    for key in sorted(ids.keys.values(), key=lambda k: k.name):
        click.echo(f"{key.name}\t{','.join(key.roles)}\t{_when(key.created_ms)}\t{_when(key.expires_ms)}")


@keys.command("revoke")
@click.argument("name")
@click.option("--config", "config_file", metavar="FILE", help=CONFIG_HELP)
def keys_revoke(name: str, config_file: str | None) -> None:
    """Revoke API key NAME; it stops working at once."""
    _take_out(config_file, "keys", name, "key")
    click.echo(f"Revoked key {name}")


def _take_out(config_file: str | None, table: str, name: str, what: str) -> None:
    """Remove entry NAME of the users file's `users` or `keys`; exit 1 when there is none."""
    path = _guarded(lambda: _users_file(config_file))

    def change():
        with store.editing(path) as ids:
            return getattr(ids, table).pop(name, None)
    if _guarded(change) is None:
        click.echo(f"error: no {what} named {name!r}", err=True)
        sys.exit(1)

"""The pieces of ogc_gateway/security on their own: tokens, password hashes, the users file and its
commands, the shared failed-sign-in limiter, log redaction and the validator's new keys."""

from __future__ import annotations

import logging
import multiprocessing
import time

import bcrypt
import pytest
import yaml
from click.testing import CliRunner

from ogc_gateway.cli import cli
from ogc_gateway.config import config_from_dict
from ogc_gateway.engine.errors import ConfigError
from ogc_gateway.security import redact, store, tokens
from ogc_gateway.security.access import ADMIN, Credentials, Identity, Refused, credentials, decide
from ogc_gateway.security.limiter import Limiter
from ogc_gateway.security.passwords import hash_password, verify_password
from secure import basic

KEY = b"k" * 40


# --- tokens -----------------------------------------------------------------------------------------

def claims(minutes=5, binding=""):
    return tokens.Claims("alice", ("analyst", "viewer"), tokens.now_ms() + minutes * 60_000, binding)


def test_a_token_reads_back_its_claims_under_the_same_secret_only():
    made = claims(binding="ip:10.0.0.7")
    token = tokens.issue(KEY, made)
    assert token.startswith("ogt1.") and token.count(".") == 2
    assert tokens.read(KEY, token) == made
    assert tokens.read(b"x" * 40, token) is None                 # a rotated secret revokes every token


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),           # signature changed
    lambda t: t.replace("ogt1.", "ogt1.e", 1),                     # payload changed
    lambda t: "ogt2." + t[5:],                                     # unknown version
    lambda t: t + ".x",                                            # extra part
    lambda t: "",
    lambda t: "ogt1." + "a" * 5000,
])
def test_a_changed_or_malformed_token_is_not_read(mangle):
    assert tokens.read(KEY, mangle(tokens.issue(KEY, claims()))) is None


def test_a_token_whose_payload_is_rewritten_with_more_roles_fails_its_signature():
    import base64
    import json
    token = tokens.issue(KEY, claims())
    _, payload, sig = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body["r"] = [ADMIN]
    forged = "ogt1." + base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=") + "." + sig
    assert tokens.read(KEY, forged) is None


@pytest.mark.parametrize("bound,referer,ok", [
    ("https://maps.example.org/app/index.html", "https://maps.example.org/other/page?x=1", True),
    ("https://maps.example.org/app", "https://MAPS.example.org:443/", True),
    ("http://maps.example.org:8080/", "http://maps.example.org:8080/viewer", True),
    ("https://maps.example.org/app", "http://maps.example.org/app", False),      # scheme
    ("https://maps.example.org/app", "https://evil.example.org/app", False),    # host
    ("https://maps.example.org/app", "https://maps.example.org:8443/app", False),  # port
    ("https://maps.example.org/app", None, False),
    ("https://maps.example.org/app", "not a url", False),
])
def test_a_referer_binding_compares_scheme_host_and_port(bound, referer, ok):
    binding = f"referer:{tokens.origin(bound)}"
    assert tokens.binding_holds(binding, "10.0.0.1", referer) is ok


def test_an_ip_binding_wants_the_same_address():
    assert tokens.binding_holds("ip:10.0.0.7", "10.0.0.7", None)
    assert not tokens.binding_holds("ip:10.0.0.7", "10.0.0.8", None)
    assert not tokens.binding_holds("ip:10.0.0.7", None, None)
    assert tokens.binding_holds("", None, None)


# --- passwords ---------------------------------------------------------------------------------------

def test_argon2_and_bcrypt_hashes_verify_and_wrong_passwords_do_not():
    stored = hash_password("correct horse")
    assert stored.startswith("$argon2id$") and "correct horse" not in stored
    assert verify_password(stored, "correct horse") and not verify_password(stored, "correct horsE")
    legacy = bcrypt.hashpw(b"battery staple", bcrypt.gensalt(rounds=4)).decode()
    assert verify_password(legacy, "battery staple") and not verify_password(legacy, "battery")
    assert not verify_password(None, "anything") and not verify_password("plain-text", "plain-text")


# --- credentials and decisions ------------------------------------------------------------------------

def environ(query="", **headers):
    env = {"QUERY_STRING": query, "REMOTE_ADDR": "127.0.0.1"}
    env.update({f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()})
    return env


def test_credentials_are_found_in_the_token_parameter_then_the_headers():
    assert credentials(environ("f=json&TOKEN=abc")) == Credentials("bearer", "abc")
    assert credentials(environ(), form_token="def") == Credentials("bearer", "def")
    assert credentials(environ(**{"X-Esri-Authorization": "Bearer ghi"})) == Credentials("bearer", "ghi")
    assert credentials(environ(Authorization="bearer jkl")) == Credentials("bearer", "jkl")
    assert credentials(environ(Authorization=basic("u", "p:w")["Authorization"])) == Credentials("basic", "p:w", "u")
    assert credentials(environ("token=first", Authorization="Bearer second")).secret == "first"
    assert credentials(environ(Authorization="Basic %%%")) == Credentials("basic", "", None)
    assert credentials(environ("f=json", Authorization="Negotiate xyz")) is None


ALICE = Identity("alice", frozenset({"analyst"}), "token")
BOB = Identity("bob", frozenset({"viewer"}), "token")
ROOT = Identity("root", frozenset({ADMIN}), "password")


@pytest.mark.parametrize("access,who,status", [
    ("public", None, 200), ("public", BOB, 200), ("public", Refused(498, "bad"), 498),
    (("analyst",), None, 499), (("analyst",), BOB, 403), (("analyst",), ALICE, 200), (("analyst",), ROOT, 200),
    (None, None, 499), (None, BOB, 200), (("analyst",), Refused(429, "slow", 30), 429),
])
def test_the_access_decision(access, who, status):
    assert decide(access, who).status == status


# --- the users file and its commands -----------------------------------------------------------------

@pytest.fixture()
def secured(tmp_path, data_dir):
    (tmp_path / "secret.key").write_text("z" * 48)
    conf = tmp_path / "gateway.yaml"
    conf.write_text(yaml.safe_dump({"security": {"secret_file": "secret.key"},
                                    "services": {"dem": {"sources": str(data_dir / "dem" / "*.tif")}}}))
    return conf


def test_users_add_list_remove_store_only_hashes(secured):
    runner = CliRunner()
    out = runner.invoke(cli, ["users", "add", "carol", "--role", "analyst", "--role", "viewer", "--password-stdin",
                              "--config", str(secured)], input="a long password\n")
    assert out.exit_code == 0, out.output
    text = (secured.parent / "users.yaml").read_text()
    assert "a long password" not in text and "$argon2id$" in text
    assert (secured.parent / "users.yaml").stat().st_mode & 0o077 == 0
    ids = store.load(secured.parent / "users.yaml")
    assert ids.users["carol"].roles == ("analyst", "viewer")
    assert verify_password(ids.users["carol"].password, "a long password")
    listed = runner.invoke(cli, ["users", "list", "--config", str(secured)])
    assert listed.output.splitlines() == ["name\troles", "carol\tanalyst,viewer"]
    prompted = runner.invoke(cli, ["users", "add", "dave", "--role", "viewer", "--config", str(secured)],
                             input="another password\nanother password\n")
    assert prompted.exit_code == 0, prompted.output
    assert verify_password(store.load(secured.parent / "users.yaml").users["dave"].password, "another password")
    assert runner.invoke(cli, ["users", "remove", "carol", "--config", str(secured)]).exit_code == 0
    assert "carol" not in store.load(secured.parent / "users.yaml").users
    missing = runner.invoke(cli, ["users", "remove", "carol", "--config", str(secured)])
    assert missing.exit_code == 1 and "no user named 'carol'" in missing.output


def test_users_add_refuses_short_passwords_and_bad_roles(secured):
    runner = CliRunner()
    short = runner.invoke(cli, ["users", "add", "x", "--role", "a", "--password-stdin", "--config", str(secured)],
                          input="short\n")
    assert short.exit_code == 1 and "at least 8" in short.output
    bad = runner.invoke(cli, ["users", "add", "x", "--role", "a b", "--password-stdin", "--config", str(secured)],
                        input="long enough password\n")
    assert bad.exit_code != 0 and "role" in bad.output


def test_keys_create_prints_the_key_once_and_stores_a_digest(secured):
    runner = CliRunner()
    made = runner.invoke(cli, ["keys", "create", "--name", "ci", "--role", "publisher", "--expires-days", "30",
                               "--config", str(secured)])
    assert made.exit_code == 0, made.output
    key = made.stdout.strip()
    assert key.startswith("ogk_") and len(key) > 40
    text = (secured.parent / "users.yaml").read_text()
    assert key not in text and store.key_digest(key) in text
    ids = store.load(secured.parent / "users.yaml")
    assert ids.key_for(key, tokens.now_ms()).roles == ("publisher",)
    assert ids.key_for(key + "x", tokens.now_ms()) is None
    assert ids.key_for(key, tokens.now_ms() + 31 * 86_400_000) is None        # expired after 30 days
    listed = runner.invoke(cli, ["keys", "list", "--config", str(secured)])
    assert listed.output.splitlines()[1].startswith("ci\tpublisher\t") and key not in listed.output
    again = runner.invoke(cli, ["keys", "create", "--name", "ci", "--role", "x", "--config", str(secured)])
    assert again.exit_code == 1 and "exists" in again.output
    assert runner.invoke(cli, ["keys", "revoke", "ci", "--config", str(secured)]).exit_code == 0
    assert store.load(secured.parent / "users.yaml").keys == {}


def test_the_commands_need_a_security_section(tmp_path, data_dir):
    conf = tmp_path / "gateway.yaml"
    conf.write_text(yaml.safe_dump({"services": {"dem": {"sources": str(data_dir / "dem" / "*.tif")}}}))
    out = CliRunner().invoke(cli, ["users", "list", "--config", str(conf)])
    assert out.exit_code == 1 and "no 'security' section" in out.output


# --- the limiter, shared between processes ------------------------------------------------------------

def _fail_from_another_process(path, user, address, times):
    limiter = Limiter(path, 3, 600)
    for _ in range(times):
        limiter.failed(user, address)


def test_failed_sign_ins_counted_by_one_process_block_another(tmp_path):
    path = tmp_path / "limits.sqlite"
    here = Limiter(path, 3, 600)
    assert here.retry_after("alice", "10.0.0.1") == 0
    worker = multiprocessing.get_context("spawn").Process(target=_fail_from_another_process,
                                                         args=(path, "alice", "10.0.0.1", 3))
    worker.start()
    worker.join(60)
    assert worker.exitcode == 0
    wait = here.retry_after("alice", "10.0.0.9")           # the user is blocked from any address
    assert 590 <= wait <= 600
    assert here.retry_after("bob", "10.0.0.1") == 0         # the address allows 4 x 3 failures
    here.succeeded("alice")
    assert here.retry_after("alice", "10.0.0.1") == 0


def test_the_block_ends_when_the_failures_leave_the_window(tmp_path):
    limiter = Limiter(tmp_path / "l.sqlite", 2, 60)
    start = time.time()
    limiter.failed("u", None, now=start - 50)
    limiter.failed("u", None, now=start - 10)
    assert limiter.retry_after("u", None, now=start) == 10
    assert limiter.retry_after("u", None, now=start + 11) == 0


# --- redaction ---------------------------------------------------------------------------------------

def test_log_records_never_carry_passwords_tokens_or_keys(caplog):
    redact.install()
    token = tokens.issue(KEY, claims())
    with caplog.at_level(logging.INFO, logger="ogc_gateway.test"):
        log = logging.getLogger("ogc_gateway.test")
        log.info("GET /x?f=json&token=%s&bbox=1", token)
        log.info("POST username=alice&password=hunter2secret&f=json")
        log.info("%(r)s", {"r": f"GET /wms?TOKEN={token} HTTP/1.1"})
        log.info("Authorization: Bearer %s / Basic YWxpY2U6cHc=", token)
        log.info("key %s in text", "ogk_" + "Q" * 43)
    text = caplog.text
    assert token not in text and "hunter2secret" not in text and "YWxpY2U6cHc" not in text and "Q" * 43 not in text
    assert "token=***&bbox=1" in text and "password=***" in text and "TOKEN=***" in text


# --- validation --------------------------------------------------------------------------------------

def problems(raw, tmp_path):
    with pytest.raises(ConfigError) as err:
        config_from_dict(raw, tmp_path / "gateway.yaml")
    return err.value.problems


def test_the_validator_knows_the_security_keys(tmp_path, data_dir, monkeypatch):
    monkeypatch.delenv("OGC_GATEWAY_SECRET", raising=False)
    src = str(data_dir / "dem" / "*.tif")
    found = problems({"security": {"secret_fil": "x", "token_minutes": 0, "max_token_minutes": "a"},
                      "services": {"dem": {"sources": src, "access": "friends"}}}, tmp_path)
    text = "\n".join(found)
    assert "security.secret_fil: unknown key (did you mean 'secret_file'?)" in text
    assert "security.secret_file: needed (or the OGC_GATEWAY_SECRET environment variable)" in text
    assert "security.token_minutes: must be a whole number from 1" in text
    assert "security.max_token_minutes: must be a whole number" in text
    assert "services.dem.access: must be 'public' or a non-empty list of role names" in text
    (tmp_path / "short.key").write_text("too short")
    assert any("at least 32 bytes" in p for p in problems(
        {"security": {"secret_file": "short.key"}, "services": {"dem": {"sources": src}}}, tmp_path))
    assert any("longer than max_token_minutes" in p for p in problems(
        {"security": {"secret_file": "short.key", "token_minutes": 100, "max_token_minutes": 50},
         "services": {"dem": {"sources": src}}}, tmp_path))


def test_access_without_a_security_section_is_an_error(tmp_path, data_dir):
    found = problems({"services": {"dem": {"sources": str(data_dir / "dem" / "*.tif"), "access": ["a"]}}},
                     tmp_path)
    assert found == ["gateway.yaml: services.dem.access: needs a 'security' section (without one every service "
                     "is public)"]


def test_the_secret_may_come_from_the_environment(tmp_path, data_dir, monkeypatch):
    monkeypatch.setenv("OGC_GATEWAY_SECRET", "e" * 40)
    config = config_from_dict({"security": {"token_minutes": 30},
                               "services": {"dem": {"sources": str(data_dir / "dem" / "*.tif"), "access": "public"}}},
                              tmp_path / "gateway.yaml")
    assert config.security.secret_file is None and config.security.token_minutes == 30
    assert config.security.users_file == tmp_path / "users.yaml"
    assert config.services["dem"].access == "public"


def test_allowed_hosts_and_cors_origins_are_validated(tmp_path, data_dir):
    src = str(data_dir / "dem" / "*.tif")
    found = problems({"server": {"allowed_hosts": "maps.example.org", "cors_origins": ["maps.example.org"]},
                      "services": {"dem": {"sources": src}}}, tmp_path)
    assert any("server.allowed_hosts: must be a list of host names" in p for p in found)
    assert any("server.cors_origins: must be '*' or a list of origins" in p for p in found)
    config = config_from_dict({"server": {"allowed_hosts": ["Maps.example.org", "*.example.net"],
                                          "cors_origins": ["https://app.example.org/"]},
                               "services": {"dem": {"sources": src}}}, tmp_path / "gateway.yaml")
    assert config.server.allowed_hosts == ("maps.example.org", "*.example.net")
    assert config.server.cors_origins == ("https://app.example.org",)

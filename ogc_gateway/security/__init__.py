"""Identity and access: who is asking (tokens, API keys, passwords) and what they may see.

Small modules, each one idea:
  settings.py  the `security:` section and `access:` key, parsed for the strict validator
  tokens.py    stateless HMAC-signed tokens (user, roles, expiry, client binding)
  passwords.py argon2 (or bcrypt) password hashes
  store.py     the users file: users with password hashes, API keys stored as hashes
  limiter.py   failed sign-ins per user and per address, shared by every worker (SQLite in cache_dir)
  access.py    credentials from a request's environ; the access decision (pure functions)
  runtime.py   Security: the per-app object joining the above (`may_access`, `visible`, `sign_in`)
  redact.py    token, password and key values never reach a log
  caller.py    who is calling (once per request), what they may see, token links for capabilities
  refusals.py  refusals in each face's format (ArcGIS JSON, WMS and OWS exception reports)
  web.py       the Flask side: the checks before every view, headers after it
  views.py     the ArcGIS token service (generateToken)
  commands.py  `ogc-gateway users …` and `ogc-gateway keys …`

Nothing here imports the engine's raster code; only caller.py, refusals.py, web.py and views.py import
Flask.
"""

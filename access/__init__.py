"""Who is asking and what they may do, for every HTTP edge (docs/architecture.md, "Access").

One resolver (`resolver.resolve`: an API key or a login session -> `core.permissions.Principal`
for one project) and one dependency per permission (`deps.requires`), checked against the one
table in `core/permissions.py`. The API, the pages, the collector and /metrics all use them;
each edge only says how a refusal is rendered (JSON, a page, an OTLP status, plain text).
"""

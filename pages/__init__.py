"""The read side's shared layer: what each page shows, built once, rendered twice.

A page and its JSON twin come from one function here that builds the page's data as a
pydantic model (Datasette's `data()`); `api/` returns the model as JSON (documented in
OpenAPI), `web/` renders it with a template and points at the twin with a
`Link: <...>; rel="alternate"; type="application/json"` header. Both edges import this
package; it imports only `core/`, `db/` and `access/` (docs/architecture.md).
"""

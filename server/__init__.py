"""Assembly: the CLI and create_app(), which mount collector, api and web in one ASGI app."""

"""Storage: SQLAlchemy models, engine/session factory, query functions, embedded PostgreSQL."""

"""Query functions: each takes a Session, never commits; the caller owns the transaction."""

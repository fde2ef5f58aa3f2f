"""OTLP/HTTP receiver: validation, bounded queue, batch writer."""

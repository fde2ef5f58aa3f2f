"""Audit reports: one model (core/report_model.py) built from db/ and pages/, rendered as HTML,
PDF, JSON and CSV, sealed with a manifest of the span records it covers (docs/compliance.md).

A layer beside access/: it imports core/, db/ and pages/, never the edges (api/, web/, collector/).
"""

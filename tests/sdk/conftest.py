"""Fixtures for the SDK tests (no database, no network beyond loopback).

* ``HOST_PROVIDER`` is an SDK TracerProvider with its own in-memory exporter,
  standing in for an application that configured OpenTelemetry itself; Causeline's
  processor is added to it (never replacing it). It is passed explicitly, not made
  global, so other test directories in the same pytest run are not affected;
  behaviour around the *global* provider is tested in subprocesses.
* Internal SDK errors are re-raised (``raise_internal_errors``) and any internal
  error recorded during a test - also in background threads - fails the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import causeline
from causeline import _internal, instrumentations

from sdk_helpers import HOST_EXPORTER, HOST_PROVIDER, Recorder, StubCollector


@pytest.fixture(autouse=True)
def _surface_internal_errors() -> Iterator[None]:
    previous = _internal.raise_internal_errors
    _internal.raise_internal_errors = True
    _internal.clear_errors()
    yield
    _internal.raise_internal_errors = previous
    errors = _internal.recent_errors()
    _internal.clear_errors()
    assert not errors, f"causeline recorded internal errors: {errors!r}"


def _start(**kwargs: Any) -> Recorder:
    exporter = kwargs.pop("exporter") if "exporter" in kwargs else InMemorySpanExporter()  # None: real OTLP
    kwargs.setdefault("auto_instrument", False)
    kwargs.setdefault("service_name", "sdk-tests")
    kwargs.setdefault("tracer_provider", HOST_PROVIDER)
    assert causeline.init(exporter=exporter, **kwargs)
    return Recorder(exporter)


@pytest.fixture
def start_causeline() -> Iterator[Any]:
    """Call with init() keyword arguments; shuts Causeline down after the test."""
    yield _start
    causeline.shutdown()
    instrumentations.disable_all()
    HOST_EXPORTER.clear()


@pytest.fixture
def rec(start_causeline: Any) -> Recorder:
    return start_causeline()


@pytest.fixture
def rec_content(start_causeline: Any) -> Recorder:
    return start_causeline(capture_content=True)


@pytest.fixture
def stub_collector() -> Iterator[StubCollector]:
    stub = StubCollector()
    yield stub
    stub.close()

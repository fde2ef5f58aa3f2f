"""kill -9 of a collector process mid-load, against the cluster: no acknowledged span lost,
nothing stored or counted twice (the test of tests/e2e/test_kill9.py, over OTLP/HTTP)."""

import pytest

from tests.e2e.test_kill9 import test_kill_9_mid_load_loses_no_acknowledged_span as kill9_mid_load


@pytest.mark.slow
def test_kill_9_mid_load_loses_no_acknowledged_span(pg, tmp_path):
    kill9_mid_load(pg, tmp_path, "http")  # marks leave the function itself as it is

"""The Citus suite: the same tests as elsewhere, against a coordinator and two workers.

Skipped, with the reason printed, only where the bundle or its installation is absent.
"""

from __future__ import annotations

import pytest

from tests.citus.cluster import CitusCluster, unavailable
from tests.collector.conftest import collector  # noqa: F401  (fixtures of the reused tests)

REASON = unavailable()


def pytest_collection_modifyitems(config, items):
    if REASON is None:
        return
    skip = pytest.mark.skip(reason=f"Citus suite skipped: {REASON}")
    for item in items:
        if "tests/citus/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(skip)


def pytest_report_header(config):
    return f"citus: {'available' if REASON is None else 'SKIPPED: ' + REASON}"


@pytest.fixture(scope="session")
def pg():
    """Overrides tests/conftest.py's: every storage test of this directory runs on the cluster."""
    cluster = CitusCluster()
    yield cluster
    cluster.close()

import pytest

from tests.judge.fake_server import FakeModelServer


@pytest.fixture
def fake_model():
    """fake_model(answer) -> a running FakeModelServer, closed after the test."""
    servers = []

    def start(answer):
        server = FakeModelServer(answer)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()

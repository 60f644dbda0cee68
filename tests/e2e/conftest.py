"""Fixtures of the end-to-end suite; the helpers and the server contract are in helpers.py."""

import pytest

from helpers import NimbusServer


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A nimbus server shared by the tests of one module (environments stay warm for 300 s)."""
    srv = NimbusServer(tmp_path_factory.mktemp("nimbus")).start()
    yield srv
    srv.teardown()


@pytest.fixture
def server_factory(tmp_path_factory):
    """Start extra servers with their own flags; all are stopped and checked when the test ends."""
    started: list[NimbusServer] = []

    def make(**kw) -> NimbusServer:
        srv = NimbusServer(tmp_path_factory.mktemp("nimbus"), **kw).start()
        started.append(srv)
        return srv

    make.started = started
    yield make
    errors = []
    for srv in started:
        try:
            srv.teardown()
        except AssertionError as e:
            errors.append(str(e))
    assert not errors, "\n".join(errors)


@pytest.fixture(scope="module")
def lam(server):
    return server.lambda_client()


@pytest.fixture(scope="module")
def logs(server):
    return server.logs_client()


@pytest.fixture(scope="module")
def lam_raw(server):
    """A Lambda client that skips botocore's own parameter checks, so bad input reaches the server."""
    return server.lambda_client(validate=False)

import pytest
from hypothesis import HealthCheck, settings

# The suite runs a bounded number of examples; `pytest --hypothesis-profile=long` runs
# the property tests (merge rules, fuzzing) for as long as you care to wait.
settings.register_profile("ci", max_examples=100, deadline=None)
settings.register_profile("long", max_examples=10_000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci")

from irctest import start_server


@pytest.fixture
async def server(nursery, tmp_path):
    """A running server with default test limits (flood control on)."""
    return await start_server(nursery, tmp_path)


@pytest.fixture
def make_server(nursery, tmp_path_factory):
    """Start a server with custom settings: `await make_server(limits={...})`."""
    async def make(**kwargs):
        return await start_server(nursery, tmp_path_factory.mktemp("srv"), **kwargs)
    return make

import pytest

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

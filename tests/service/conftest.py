import pytest  # noqa: E402

from tests.live_service import service, worker_factory  # noqa: F401 - fixtures
from wildrobot.queue.client import QueueClient, connect  # noqa: E402


@pytest.fixture
def queue(redis_url: str):
    """A worker-side queue client on the test's Redis (retries briefly), ppo group ready."""
    client = connect(redis_url)
    q = QueueClient(client, retry_s=1.0)
    q.ensure_groups(["ppo"])
    yield q
    client.close()

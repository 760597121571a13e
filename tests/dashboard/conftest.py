from tests.service_fixtures import service, worker_factory  # noqa: F401 - fixtures

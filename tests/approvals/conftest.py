from tests.rounds.conftest import locked_round, open_round, users  # noqa: F401 - shared fixtures

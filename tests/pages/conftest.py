"""Fixtures of the page tests: a fresh académie with campaign 2027 open, and the services in process."""

from pages_world import world  # noqa: F401 - the fixture

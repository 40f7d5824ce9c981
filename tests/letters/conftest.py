"""The letters and preparation tests (SPEC §6) run in the services' world: its fixtures (a fresh académie, the
services in process) and its helpers (tests/services), shared rather than copied, as tests/records does."""

from tests.in_services_world import share

share(globals())

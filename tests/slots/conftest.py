"""The slots' tests (SPEC §7) run in the services' world: its fixtures (a fresh académie, the services in
process) and its helpers (tests/services: matrix, ...; tests/shared: event_factories), shared, not copied."""

from tests.in_services_world import share

share(globals())

"""The records' tests run in the services' world: its fixtures (a fresh académie, the services in process) and
its helpers (tests/services: histories, matrix, in_process, ...), shared rather than copied."""

from tests.in_services_world import share

share(globals())

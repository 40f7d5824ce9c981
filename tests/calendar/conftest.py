"""The calendar's tests (SPEC §7 « The campaign's calendar » and « The day's work ») run in the services' world:
its fixtures (a fresh académie, the services in process) and helpers, shared, not copied."""

from tests.in_services_world import share

share(globals())

"""Core: settings, errors, connecting, registering, reading and the lifecycle of versions.

It knows neither KFP nor any backend: where it needs a backend's answer (a default, a hint, a
run's link) it asks ``settings.backend_impl()``, which :mod:`mrhelpers.backends` fills in.
"""

"""Support for the tests and the benchmarks, kept in the package like ``litestar.testing``:
a real broker and database per run, the sandbox, the service in-process or as processes.

Nothing in the runtime path imports this package, and nothing here imports a dev-only package
at module level (testcontainers is imported only where no local service answers).
"""

"""Dev- and test-only code: the embedded PostgreSQL and Redis, the `make run` stack, the load kit.

Nothing in the production apps imports it at startup; deploy/ installs without its wheels.
"""

"""Sub-commands of the ``branchenv`` CLI, one module each with ``register(subparsers)``.

Each ``register`` adds its sub-parser and sets ``func`` (args → exit code). Commands get
their settings from flags or from :class:`chalicelib.domain.settings.Settings`, never by reading
the environment themselves.
"""

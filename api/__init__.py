"""The Videos protocol served over durable workflows: ``python -m api`` (see :mod:`api.app`)."""

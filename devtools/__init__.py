"""Developer tooling around the product: the local stack (``python -m devtools.devstack demo|up``).

It may use the simulators (``simulator``); product code (``sora_temporal``, ``workflows``,
``activities``, ``worker.py``, ``starter.py``) never imports this package.
"""

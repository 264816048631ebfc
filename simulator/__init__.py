"""A local stand-in for the OpenAI Videos (Sora) HTTP protocol, with steerable faults.

Run it with ``python -m simulator --port 0``; drive it from tests with
``simulator.testing.start_simulator``. Modules: ``config`` (settings), ``app`` (routes and
response shapes), ``validation`` (request checks), ``state`` and ``lifecycle`` (jobs and their
clock-driven progress), ``markers`` (prompt steering), ``faults`` (fault rules), ``replies``
(delivery, truncation, resets), ``hostile`` (bombs, hostile ids, junk fields, poisoned errors),
``webhooks`` (signed outbound events), ``filehost`` (``/_files`` and ``/_redirect`` for reference
URLs), ``media`` (MP4/WebP/JPEG rendering), ``control`` (``/_sim``),
``server`` (listening), ``testing`` (harness), ``process`` (child processes that announce readiness,
also used by ``devtools``). ``simulator.blob`` is a separate emulator.
"""

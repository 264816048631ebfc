"""Vercel Blob API emulator: ``python -m simulator.blob``; harness in ``simulator.blob.testing``.

Clients that read through blob URLs route them here with ``simulator.blob.transport``.
"""

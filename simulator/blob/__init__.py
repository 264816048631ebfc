"""Vercel Blob API emulator: ``python -m simulator.blob``; harness in ``simulator.blob.testing``."""

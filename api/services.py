"""What the routes work with, built once when the app starts."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from api.auth import KeyRing
from api.jobs import Jobs
from api.store import JobStore
from sora_temporal.settings import ApiSettings, Settings
from sora_temporal.storage.base import Storage


@dataclass
class Services:
    """One per running app (``app.state.services``)."""

    settings: Settings
    keys: KeyRing
    store: JobStore
    jobs: Jobs
    storage: Storage

    @property
    def api(self) -> ApiSettings:
        """The API's own part of the settings: keys, links and job timing (``settings.api``)."""
        return self.settings.api

    def base_url(self, request: Request) -> str:
        """Where clients reach this process: ``PUBLIC_BASE_URL``, else the address the request used."""
        return self.api.public_base_url or str(request.base_url).rstrip("/")


def services(request: Request) -> Services:
    """The app's services (a FastAPI dependency)."""
    found: Services = request.app.state.services
    return found

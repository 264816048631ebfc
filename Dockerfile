# syntax=docker/dockerfile:1
# Images for the compose stack (docker-compose.yml, docs/operations.md):
#   app        the worker, the starter and the HTTP API (`python worker.py`, `python starter.py ...`)
#   simulator  the Videos API simulator, for running the stack without keys
# The base image is pinned to the interpreter the test suite runs on; bump it on purpose.
FROM python:3.11.7-slim-bookworm AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    STORAGE_DIR=/data/storage \
    DOWNLOAD_DIR=/data/downloads \
    DATABASE_URL=sqlite:////data/sora.db

# A fixed non-root user owns /data and its subdirectories. Docker copies a directory's ownership into
# a named volume the first time the volume is mounted there, so the volumes compose mounts on
# /data/storage and /data/downloads start out writable by this user.
RUN groupadd --system --gid 10001 sora \
 && useradd --system --uid 10001 --gid sora --home-dir /app --no-create-home --shell /usr/sbin/nologin sora \
 && install -d -o sora -g sora /data /data/storage /data/downloads

WORKDIR /app

# Dependencies first, straight from pyproject.toml's pins (no second list to drift), so a code
# change does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

# The code is read-only for the runtime user (owned by root). .dockerignore keeps out .env, data,
# the virtualenv and the tests.
COPY . .


FROM base AS simulator
# The simulator serves on loopback only; socat relays the compose network to it (deploy/simulator/run.sh).
RUN apt-get update \
 && apt-get install -y --no-install-recommends socat \
 && rm -rf /var/lib/apt/lists/*
# The simulator's own pins (aiohttp, av) from the `local` extra, without the Temporal binaries.
RUN python -c "import tomllib; extra = tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['local']; print('\n'.join(r for r in extra if not r.startswith('temporal-')))" \
        > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt
USER sora
EXPOSE 8090
CMD ["bash", "deploy/simulator/run.sh"]


# Last, so a plain `docker build .` gives this image.
FROM base AS app
USER sora
CMD ["python", "worker.py"]

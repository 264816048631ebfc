FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY workflows workflows
COPY activities activities
COPY sora_temporal sora_temporal
COPY simulator simulator
COPY worker.py starter.py ./
RUN pip install --no-cache-dir .
ENV DOWNLOAD_DIR=/tmp/sora-downloads
USER nobody
CMD ["python", "worker.py"]

# One image for the dashboard (default command) and the scoring API (command override).
# Build:  docker build --build-arg ROWS=20000 -t credit-scoring .
# Run:    see docs/deployment.md (docker compose up with both services).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SCORING_WORKDIR=/app \
    SCORING_AUDIT_DB=/var/lib/scoring/audit.sqlite \
    OMP_NUM_THREADS=1 \
    BOKEH_RESOURCES=server \
    MPLCONFIGDIR=/tmp/matplotlib \
    NUMBA_CACHE_DIR=/tmp/numba \
    HEALTH_PORT=5006

WORKDIR /app

# DejaVu Sans: the decision file's PDF font (French accents and any character an advisor types).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

# Dependencies first: this layer is rebuilt only when the lock changes.
COPY requirements.lock ./
RUN pip install --no-cache-dir -r requirements.lock

COPY pyproject.toml dashboard.py ./
COPY scoring/ scoring/
COPY views/ views/

# Model and client files built into the image (ROWS empty = the full-size generated portfolio;
# real Home Credit CSVs in data/ at build time are used instead of the generator). With
# BUILD_MODEL=0 nothing is built: mount a built work directory and point SCORING_WORKDIR at it.
ARG ROWS=""
ARG BUILD_MODEL=1
COPY data/ data/
RUN if [ "$BUILD_MODEL" = "1" ]; then \
        python -m scoring build --quiet ${ROWS:+--rows "$ROWS"} && rm -rf data/generated; \
    fi

# Non-root at run time. The artefacts stay root-owned and read-only; the audit log lives in a
# volume. Group 0 owns the writable directory so an arbitrary --user UID:0 works too.
RUN useradd --create-home --uid 10001 --gid 0 --shell /usr/sbin/nologin scoring \
    && mkdir -p /var/lib/scoring \
    && chown 10001:0 /var/lib/scoring \
    && chmod 0770 /var/lib/scoring
USER 10001:0
VOLUME ["/var/lib/scoring"]

EXPOSE 5006 8000

# No curl in slim images: Python checks the service's own /health (HEALTH_PORT=8000 for the API).
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('HEALTH_PORT', '5006'), timeout=4)"]

# The dashboard; the API is `python -m scoring api --host 0.0.0.0 --port 8000` (see compose.yaml).
CMD ["python", "-m", "views.serve", "--port", "5006", "--address", "0.0.0.0", "--secrets", "/run/secrets-dir"]

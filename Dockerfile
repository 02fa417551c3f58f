# Kraken's own image: every role (serve, server, controller, worker, agent) from one image.
#
#   docker build -t kraken .                                      # on python:3.11-slim
#   docker build -t kraken --build-arg BASE=kraken-test/python:3.11 .   # a locally made base
#                                                                   (scripts/local-images.sh)
#   docker run -p 8080:8080 -e KRAKEN_ADMIN_PASSWORD=... kraken     # kraken serve, all in one
#
# BASE must provide python3 (3.11+) with the venv module; the same BASE is used by
# both stages, so the venv built in the first one runs unchanged in the second.
ARG BASE=python:3.11-slim

# TODO(frontend): a `FROM node:20 AS frontend` stage will build frontend/ (npm ci &&
# npm run build) and the final stage will COPY its dist/ into the package's static dir.

# ---------------------------------------------------------------- builder
FROM ${BASE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY . .
# pyproject's readme must exist for the build backend, even in a trimmed context.
RUN test -f README.md || echo "# Kraken" > README.md
# One wheel for Kraken plus wheels for all its dependencies...
RUN python3 -m venv /opt/build \
 && /opt/build/bin/pip wheel --wheel-dir /wheels .
# ...installed into the venv the final stage takes as it is. Installing here rather than in
# the final stage keeps the wheels (and pip) out of the final image's layers.
RUN python3 -m venv /opt/kraken \
 && /opt/kraken/bin/pip install --no-index --find-links /wheels kraken-ci \
 && /opt/kraken/bin/pip uninstall -y pip \
 && find /opt/kraken -name '__pycache__' -prune -exec rm -rf {} + \
 && /opt/kraken/bin/kraken --help >/dev/null

# ---------------------------------------------------------------- final
FROM ${BASE}
LABEL org.opencontainers.image.title="Kraken CI" \
      org.opencontainers.image.source="https://github.com/kraken-ci/kraken" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/kraken/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    KRAKEN_DATA_DIR=/var/lib/kraken \
    KRAKEN_HOST=0.0.0.0 \
    KRAKEN_PORT=8080
RUN groupadd --system --gid 10001 kraken \
 && useradd --system --uid 10001 --gid kraken --home-dir /var/lib/kraken --create-home --shell /usr/sbin/nologin kraken \
 && install -d -m 0700 -o kraken -g kraken /var/lib/kraken-agent
COPY --from=builder /opt/kraken /opt/kraken
USER kraken
WORKDIR /var/lib/kraken
EXPOSE 8080
# Only the HTTP roles answer; compose files disable it for controller, worker and agent.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python3", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/api/health' % os.environ.get('KRAKEN_PORT', '8080'), timeout=4)"]
ENTRYPOINT ["kraken"]
CMD ["serve", "--host", "0.0.0.0"]

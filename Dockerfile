# newsroom-notify image: one image for every role (worker, api, mailer, topics, post, tail).
# The build argument HARNESS=true adds the development harness (services/dev, package
# newsroom_dev: the demo, its builders and samples) for compose's `demo` service, under its own
# tag; the service's image never has it (tests/unit/test_deploy.py, test_wheels.py).
#
# Stage 1 builds the project and its dependencies into a virtualenv; stage 2 copies only that
# virtualenv onto a fresh slim base, so no pip cache, wheel or compiler reaches the final image.
# RocksDB comes from the rocksdict wheel (faust-streaming[rocksdict]): no system library needed.
#
# Behind a corporate network (both need BuildKit, which `docker compose build` uses):
# - offline: `make wheelhouse` fills .wheelhouse/ on the host; build with
#   `--build-arg WHEELHOUSE=.wheelhouse` (compose: NEWSROOM_WHEELHOUSE=.wheelhouse) and pip
#   installs from those wheels only, without the network;
# - online through a TLS-intercepting proxy: give its CA bundle as the build secret `ca_bundle`
#   (compose: NEWSROOM_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt); pip trusts it, and it is
#   never written to an image layer.
# No `# syntax=` line: it would make BuildKit pull its frontend from Docker Hub.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# A directory of the build context holding every wheel the project needs (and setuptools and
# wheel, to build the project itself); empty: install from the package index.
ARG WHEELHOUSE=""
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY services ./services
# Empty: the service alone. "true": the service and its development harness (the demo image).
ARG HARNESS=""
# constraints.txt is the lock (`make lock`): the image gets the versions the tests ran with.
RUN --mount=type=bind,target=/context \
    --mount=type=secret,id=ca_bundle \
    set -e; \
    if grep -qs 'BEGIN CERTIFICATE' /run/secrets/ca_bundle; then export PIP_CERT=/run/secrets/ca_bundle; fi; \
    set -- . ; \
    if [ "$HARNESS" = true ]; then set -- . ./services/dev; fi; \
    if [ -n "$WHEELHOUSE" ]; then \
      /opt/venv/bin/pip install --no-index --find-links "/context/$WHEELHOUSE" -c constraints.txt "$@" ; \
    else \
      /opt/venv/bin/pip install --upgrade pip && /opt/venv/bin/pip install -c constraints.txt "$@" ; \
    fi

FROM ${PYTHON_IMAGE} AS runtime
# A fixed, non-root uid/gid so volume ownership (compose volumes, Kubernetes fsGroup) is stable.
RUN groupadd --system --gid 10001 notify \
 && useradd --system --uid 10001 --gid notify --home-dir /home/notify --create-home notify \
 && mkdir -p /data \
 && chown notify:notify /data
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    NEWSROOM_DATA_DIR=/data \
    NEWSROOM_WEB_HOST=0.0.0.0 \
    NEWSROOM_LOG_FORMAT=json
# Numeric, so Kubernetes can verify runAsNonRoot without resolving the name.
USER 10001:10001
WORKDIR /home/notify
# The worker's RocksDB tables: keep them across restarts (recovery from the changelogs is slow).
VOLUME ["/data"]
# 8080: the public API (`api`); 6066 (worker) and 9464 (API /metrics) are internal ports.
EXPOSE 6066 8080 9464
# Liveness of the worker's web server; `api` containers override it (port 8080) in compose.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=6 \
  CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('NEWSROOM_WEB_PORT', '6066'); sys.exit(urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=2).status != 200)"]
ENTRYPOINT ["newsroom-notify"]
CMD ["worker"]

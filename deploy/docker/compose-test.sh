#!/usr/bin/env bash
# `make compose-test`: a Docker engine and compose (installed and started when missing), the
# images (registry-free stand-ins unless COMPOSE_IMAGES=official), then tests/compose/stack.py.
# On a laptop with Docker it uses what is there. Tools built here are cached outside the repo
# (TOOLS_CACHE, as the Makefile's kustomize).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
cache=${TOOLS_CACHE:-$HOME/.cache/newsroom-notify}
compose_version=${COMPOSE_VERSION:-v2.40.3}
go=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
log() { printf '%s compose-test: %s\n' "$(date -u +%T)" "$*" >&2; }
t0=$(date +%s)

if ! command -v dockerd >/dev/null && ! docker info >/dev/null 2>&1; then
  [[ $(id -u) == 0 ]] || { log "no Docker engine, and not root to install one"; exit 1; }
  log "installing docker.io (Debian)"
  # Containers here have no init system: keep dpkg from trying to start services.
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
  log "engine installed in $(($(date +%s) - t0)) s"
fi
if ! docker info >/dev/null 2>&1; then
  [[ $(id -u) == 0 ]] || { log "the Docker engine is not running"; exit 1; }
  mkdir -p "$cache"
  log "starting dockerd (log: $cache/dockerd.log)"
  nohup dockerd >>"$cache/dockerd.log" 2>&1 &
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { tail -20 "$cache/dockerd.log" >&2; exit 1; }
fi

if ! docker compose version >/dev/null 2>&1; then
  plugin=$cache/bin/docker-compose-$compose_version
  if [[ ! -x $plugin ]]; then
    log "building docker compose $compose_version from the Go module proxy"
    export GOPATH=$cache/go GOCACHE=$cache/go-build GOFLAGS=-modcacherw GOTOOLCHAIN=local
    dir=$("$go" mod download -json "github.com/docker/compose/v2@$compose_version" \
      | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
    src=$(mktemp -d)
    cp -r "$dir/." "$src"
    chmod -R u+w "$src"
    mkdir -p "$cache/bin"
    (cd "$src" && "$go" build -trimpath \
      -ldflags "-X github.com/docker/compose/v2/internal.Version=$compose_version" \
      -o "$plugin.tmp" ./cmd)
    mv "$plugin.tmp" "$plugin"
    rm -rf "$src"
  fi
  mkdir -p "$HOME/.docker/cli-plugins"
  ln -sf "$plugin" "$HOME/.docker/cli-plugins/docker-compose"
  docker compose version
fi
log "engine and compose ready after $(($(date +%s) - t0)) s"

if [[ "${COMPOSE_IMAGES:-local}" != official ]]; then
  t=$(date +%s)
  deploy/docker/build-local-images.sh
  eval "$(deploy/docker/build-local-images.sh --env)"
  log "stand-in images ready in $(($(date +%s) - t)) s"
  # The service image from wheels made here (pip inside a build has no CA for the proxy).
  t=$(date +%s)
  .venv/bin/python -m pip wheel --quiet --wheel-dir .wheelhouse -c constraints.txt . setuptools wheel
  export NEWSROOM_WHEELHOUSE=.wheelhouse
  log "wheelhouse ready in $(($(date +%s) - t)) s"
fi
exec .venv/bin/python -m tests.compose.stack

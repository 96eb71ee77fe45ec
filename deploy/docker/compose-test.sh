#!/usr/bin/env bash
# `make compose-test`: a Docker engine and compose (installed and started when missing), the
# images (registry-free stand-ins unless COMPOSE_IMAGES=official), then tests/compose/stack.py.
# On a laptop with Docker it uses what is there. Tools built here are cached outside the repo
# (TOOLS_CACHE, as the Makefile's kustomize).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
cache=${TOOLS_CACHE:-$HOME/.cache/newsroom-notify}
# Compose when `docker compose` is missing: COMPOSE_FROM=deb (default) takes the static binary
# of Debian trixie's docker-compose package (needs glibc >= 2.34; bookworm has 2.36), checked
# against the SHA256 pinned here (the trixie Packages index's): seconds. COMPOSE_FROM=go builds
# COMPOSE_VERSION from the Go module proxy instead: 14-20 minutes on a 2-core machine. If the
# mirror no longer carries that .deb, point COMPOSE_DEB_URL at snapshot.debian.org's copy.
compose_from=${COMPOSE_FROM:-deb}
compose_deb_url=${COMPOSE_DEB_URL:-http://deb.debian.org/debian/pool/main/d/docker-compose/docker-compose_2.26.1-4_amd64.deb}
compose_deb_sha256=${COMPOSE_DEB_SHA256:-47681197cb2b1ab88206b42a1a92fc75f50d9530a6322d03494a473eed0408ea}
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

compose_from_deb() {  # the plugin's path: the binary of the pinned Debian package, checked
  local plugin=$cache/bin/docker-compose-deb-$compose_deb_sha256
  if [[ ! -x $plugin ]]; then
    log "docker compose from Debian's package $(basename "$compose_deb_url")"
    local tmp
    tmp=$(mktemp -d)
    curl -fsSL --retry 3 -o "$tmp/compose.deb" "$compose_deb_url" || { rm -rf "$tmp"; return 1; }
    if ! echo "$compose_deb_sha256  $tmp/compose.deb" | sha256sum --check --quiet >&2; then
      log "$(basename "$compose_deb_url"): SHA256 is not $compose_deb_sha256"
      rm -rf "$tmp"
      return 1
    fi
    dpkg-deb -x "$tmp/compose.deb" "$tmp/root"
    mkdir -p "$cache/bin"
    mv "$tmp/root/usr/libexec/docker/cli-plugins/docker-compose" "$plugin"
    rm -rf "$tmp"
  fi
  echo "$plugin"
}

compose_from_go() {  # the plugin's path: COMPOSE_VERSION built from the Go module proxy
  local plugin=$cache/bin/docker-compose-$compose_version
  if [[ ! -x $plugin ]]; then
    log "building docker compose $compose_version from the Go module proxy"
    local dir src
    dir=$(GOPATH=$cache/go GOCACHE=$cache/go-build GOFLAGS=-modcacherw GOTOOLCHAIN=local \
      "$go" mod download -json "github.com/docker/compose/v2@$compose_version" \
      | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
    src=$(mktemp -d)
    cp -r "$dir/." "$src"
    chmod -R u+w "$src"
    mkdir -p "$cache/bin"
    (cd "$src" && GOPATH=$cache/go GOCACHE=$cache/go-build GOFLAGS=-modcacherw GOTOOLCHAIN=local \
      "$go" build -trimpath \
      -ldflags "-X github.com/docker/compose/v2/internal.Version=$compose_version" \
      -o "$plugin.tmp" ./cmd) >&2
    mv "$plugin.tmp" "$plugin"
    rm -rf "$src"
  fi
  echo "$plugin"
}

if ! docker compose version >/dev/null 2>&1; then
  t=$(date +%s)
  plugin=
  if [[ $compose_from == deb ]]; then
    plugin=$(compose_from_deb) || log "no compose from the Debian package: building it with Go"
  fi
  [[ -n $plugin ]] || plugin=$(compose_from_go)
  mkdir -p "$HOME/.docker/cli-plugins"
  ln -sf "$plugin" "$HOME/.docker/cli-plugins/docker-compose"
  docker compose version
  log "compose installed in $(($(date +%s) - t)) s"
fi
log "engine and compose ready after $(($(date +%s) - t0)) s"

if [[ "${COMPOSE_IMAGES:-local}" != official ]]; then
  t=$(date +%s)
  deploy/docker/build-local-images.sh
  eval "$(deploy/docker/build-local-images.sh --env)"
  log "stand-in images ready in $(($(date +%s) - t)) s"
  # The service image from wheels made here (pip inside a build has no CA for the proxy).
  t=$(date +%s)
  # The demo image's harness too (services/dev); no build/ leftovers (stale files leak into wheels).
  rm -rf build services/dev/build
  .venv/bin/python -m pip wheel --quiet --wheel-dir .wheelhouse -c constraints.txt . services/dev setuptools wheel
  export NEWSROOM_WHEELHOUSE=.wheelhouse
  log "wheelhouse ready in $(($(date +%s) - t)) s"
fi
exec .venv/bin/python -m tests.compose.stack

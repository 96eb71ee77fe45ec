#!/usr/bin/env bash
# Builds registry-free stand-ins for the images docker-compose.yml pulls by default, for
# machines without Docker Hub (CI here, air-gapped laptops):
#   newsroom-local/debian:bookworm            debootstrap --variant=minbase + docker import
#   newsroom-local/python:3.11-slim-bookworm  Debian's Python 3.11      (for PYTHON_IMAGE)
#   newsroom-local/kafka:<version>            Maven jars + Debian's JRE (for KAFKA_IMAGE)
#   newsroom-local/prometheus:bookworm        Debian's prometheus       (for PROMETHEUS_IMAGE)
#   newsroom-local/mailpit:<version>          Mailpit from the Go module proxy (MAILPIT_IMAGE)
# and prints the variables that point the compose file at them (`eval "$(... --env)"`).
# Only what is missing or changed is built (the base once; the others through the build cache).
# Needs: docker, debootstrap (installed with apt-get when missing and run as root), Maven and
# the project's .venv (the Kafka jars come through newsroom_dev.kafka's cache), Go (the
# Mailpit binary, built once into TOOLS_CACHE, while the base is being bootstrapped).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
here=$repo/deploy/docker
python=${PYTHON:-$repo/.venv/bin/python}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
prefix=${LOCAL_IMAGE_PREFIX:-newsroom-local}
kafka_version=$(sed -n 's|.*<kafka.version>\(.*\)</kafka.version>.*|\1|p' "$here/kafka/pom.xml")
base=$prefix/debian:bookworm
python_image=$prefix/python:3.11-slim-bookworm
kafka_image=$prefix/kafka:$kafka_version
prometheus_image=$prefix/prometheus:bookworm
# Keep in step with MAILPIT_IMAGE's default in docker-compose.yml (tests/unit/test_deploy.py).
mailpit_version=${MAILPIT_VERSION:-v1.33.1}
mailpit_image=$prefix/mailpit:$mailpit_version
cache=${TOOLS_CACHE:-$HOME/.cache/newsroom-notify}
go=${GO:-$(command -v go || echo /usr/local/go/bin/go)}

if [[ "${1-}" == "--env" ]]; then
  printf 'export PYTHON_IMAGE=%s KAFKA_IMAGE=%s PROMETHEUS_IMAGE=%s MAILPIT_IMAGE=%s\n' \
    "$python_image" "$kafka_image" "$prometheus_image" "$mailpit_image"
  exit 0
fi

log() { printf '%s build-local-images: %s\n' "$(date -u +%T)" "$*" >&2; }

# Mailpit as a main module (its go.mod's replace directives and versions hold), CGO off as in
# the official build; in the background, while the base is bootstrapped.
mailpit_bin=$cache/bin/mailpit-$mailpit_version
build_mailpit() {
  local dir src
  export GOPATH=$cache/go GOCACHE=$cache/go-build GOFLAGS=-modcacherw GOTOOLCHAIN=local
  dir=$("$go" mod download -json "github.com/axllent/mailpit@$mailpit_version" \
    | "$python" -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
  src=$(mktemp -d)
  cp -r "$dir/." "$src"
  chmod -R u+w "$src"
  mkdir -p "$cache/bin"
  (cd "$src" && CGO_ENABLED=0 "$go" build -trimpath \
    -ldflags "-s -w -X github.com/axllent/mailpit/config.Version=$mailpit_version" \
    -o "$mailpit_bin.tmp" .)
  mv "$mailpit_bin.tmp" "$mailpit_bin"
  rm -rf "$src"
}
mailpit_pid=
if [[ ! -x $mailpit_bin ]]; then
  log "go build mailpit $mailpit_version (background; log: $cache/mailpit-build.log)"
  mkdir -p "$cache"
  build_mailpit >"$cache/mailpit-build.log" 2>&1 &
  mailpit_pid=$!
fi

if ! docker image inspect "$base" >/dev/null 2>&1; then
  if ! command -v debootstrap >/dev/null; then
    [[ $(id -u) == 0 ]] || { log "debootstrap is missing (apt-get install debootstrap)"; exit 1; }
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  fi
  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
  log "debootstrap bookworm from $mirror"
  debootstrap --variant=minbase bookworm "$root/rootfs" "$mirror" >"$root/debootstrap.log" 2>&1 \
    || { tail -30 "$root/debootstrap.log" >&2; exit 1; }
  rm -rf "$root"/rootfs/var/cache/apt/archives/*.deb "$root"/rootfs/var/lib/apt/lists/*
  log "docker import $base"
  tar -C "$root/rootfs" -c . | docker import --change 'CMD ["bash"]' - "$base" >/dev/null
  rm -rf "$root"
  trap - EXIT
fi

# The stand-ins build side by side (each is mostly apt-get waiting on the mirror): a cold run
# takes about the longest of them instead of their sum.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pids=()
build() {  # tag, context directory: in the background, logging to $work
  log "docker build $1"
  local name=${1//[\/:]/_}
  DOCKER_BUILDKIT=0 docker build --build-arg "BASE_IMAGE=$base" -t "$1" "$2" \
    >"$work/$name.log" 2>&1 &
  pids+=("$!:$name")
}

build "$python_image" "$here/python"
build "$prometheus_image" "$here/prometheus"

libs=$("$python" -c 'import sys; from pathlib import Path; from newsroom_dev.kafka import fetch_jars; print(fetch_jars(Path(sys.argv[1])))' "$here/kafka/pom.xml")
mkdir -p "$work/kafka/libs"
cp -r "$here/kafka/Dockerfile" "$here/kafka/bin" "$here/kafka/docker" "$work/kafka/"
cp "$libs"/*.jar "$work/kafka/libs/"
build "$kafka_image" "$work/kafka"

if [[ -n $mailpit_pid ]] && ! wait "$mailpit_pid"; then
  tail -30 "$cache/mailpit-build.log" >&2
  log "go build mailpit failed"
  exit 1
fi
mkdir -p "$work/mailpit"
cp "$here/mailpit/Dockerfile" "$work/mailpit/"
cp "$mailpit_bin" "$work/mailpit/mailpit"
build "$mailpit_image" "$work/mailpit"

failed=0
for job in "${pids[@]}"; do
  if ! wait "${job%%:*}"; then
    cat "$work/${job#*:}.log" >&2
    log "docker build ${job#*:} failed"
    failed=1
  fi
done
[[ $failed == 0 ]] || exit 1
log "done: $python_image $kafka_image $prometheus_image $mailpit_image"

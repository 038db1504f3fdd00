#!/usr/bin/env bash
# Prints the path of a docker compose CLI built from the module pinned in
# go.mod, building it once per machine into the user cache (~2 minutes cold).
set -euo pipefail
cd "$(dirname "$0")/../.."
cache="${XDG_CACHE_HOME:-$HOME/.cache}/orchestrator/testenv"
bin="$cache/docker-compose-v5.6.0"
if [ ! -x "$bin" ]; then
  mkdir -p "$cache"
  echo "testenv: building docker compose v5.6.0 into $bin (once per machine)" >&2
  go build -o "$bin.tmp" github.com/docker/compose/v5/cmd
  mv "$bin.tmp" "$bin"
fi
echo "$bin"

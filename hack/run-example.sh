#!/usr/bin/env bash
# The main job on an example stack: validate it, render Phase 1 and have the
# real docker compose CLI check the result. Usage: hack/run-example.sh SPEC
set -euo pipefail
cd "$(dirname "$0")/.."
spec="${1:-examples/platform/stack.yaml}"
out="$(dirname "$spec")/rendered/phase1"
./bin/orchestrator validate -f "$spec"
./bin/orchestrator render --phase=1 -f "$spec" -o "$out"
compose="$(./hack/testenv/compose-cli.sh)"
OPENAI_API_KEY="${OPENAI_API_KEY:-unset}" "$compose" -f "$out/docker-compose.yml" config -q
echo "docker compose config: $out/docker-compose.yml is valid."

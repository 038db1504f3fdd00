#!/usr/bin/env bash
# Brings the whole platform up on the local Docker engine with stand-in
# images (no registry needed): up, status, plan. `hack/demo.sh down` removes
# it again, volumes included. The engine and images come from hack/testenv.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
dir="${DEMO_DIR:-$root/rendered/demo}"
mkdir -p "$dir"
if [ "${1:-up}" = down ]; then
  cd "$dir" && "$root/bin/orchestrator" down --volumes --yes
  exit
fi
eval "$(bash hack/testenv/images.sh)"
sed -e "s|{{ .Name }}|demo|g" -e "s|{{ .Web }}|$ORCHESTRATOR_TESTENV_WEB_IMAGE|g" \
    -e "s|{{ .Postgres }}|$ORCHESTRATOR_TESTENV_POSTGRES_IMAGE|g" \
    -e "s|{{ .HTTPPort }}|18080|g" -e "s|{{ .HTTPSPort }}|18443|g" \
    test/e2e/testdata/platform.yaml.tmpl > "$dir/stack.yaml"
cd "$dir"
# The example app takes a pass-through secret; up and plan both need it.
export OPENAI_API_KEY="${OPENAI_API_KEY:-demo}"
"$root/bin/orchestrator" up --skip-preflight
"$root/bin/orchestrator" status
"$root/bin/orchestrator" plan

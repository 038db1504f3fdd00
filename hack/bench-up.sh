#!/usr/bin/env bash
# `orchestrator up` against `docker compose up -d --wait` on the same
# rendered file and stand-in images, from nothing (no containers, no
# volumes) each time; then a no-op up and a plan against the running stack.
# Needs the test environment (hack/testenv), which it starts when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
orch="$root/bin/orchestrator"
compose="$(./hack/testenv/compose-cli.sh)"
eval "$(bash hack/testenv/images.sh)"
runs="${UP_RUNS:-3}"

work="$(mktemp -d)"
cd "$work"
sed -e "s|{{ .Name }}|benchup|g" -e "s|{{ .Web }}|$ORCHESTRATOR_TESTENV_WEB_IMAGE|g" \
    -e "s|{{ .Postgres }}|$ORCHESTRATOR_TESTENV_POSTGRES_IMAGE|g" \
    -e "s|{{ .HTTPPort }}|18180|g" -e "s|{{ .HTTPSPort }}|18543|g" \
    "$root/test/e2e/testdata/platform.yaml.tmpl" > stack.yaml
export OPENAI_API_KEY=bench
cleanup() { "$orch" down --volumes --yes --progress quiet >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
"$orch" render >/dev/null

now() { date +%s.%N; }
med() { python3 -c 'import statistics,sys; print("%.2f" % statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }
ours=(); theirs=()
for _ in $(seq "$runs"); do
  "$orch" down --volumes --yes --progress quiet >/dev/null 2>&1
  t0=$(now); "$orch" up --skip-preflight --progress quiet >/dev/null 2>&1; t1=$(now)
  ours+=("$(python3 -c "print($t1-$t0)")")
  "$orch" down --volumes --yes --progress quiet >/dev/null 2>&1
  t0=$(now); "$compose" -p benchup -f rendered/phase1/docker-compose.yml up -d --wait --quiet-pull >/dev/null 2>&1; t1=$(now)
  theirs+=("$(python3 -c "print($t1-$t0)")")
done
"$orch" down --volumes --yes --progress quiet >/dev/null 2>&1
"$orch" up --skip-preflight --progress quiet >/dev/null
hyperfine -N --warmup 1 --runs 5 --export-json noop.json "$orch up --skip-preflight --progress quiet" >/dev/null 2>&1
hyperfine -N --warmup 2 --runs 15 --export-json plan.json "$orch plan" >/dev/null 2>&1
m() { python3 -c 'import json,sys; print("%.0f" % (json.load(open(sys.argv[1]))["results"][0]["median"]*1000))' "$1"; }
mo="$(med "${ours[@]}")"; mt="$(med "${theirs[@]}")"
cat <<OUT
up from nothing, full platform with stand-ins, median of $runs (s)    target
  orchestrator up                               $mo   (runs: ${ours[*]})
  docker compose up -d --wait (anchor)          $mt   (runs: ${theirs[*]})
    ratio                                       $(python3 -c "print('%.2f' % ($mo/$mt))")    <= 1.1
  orchestrator up, nothing to do (median, ms)   $(m noop.json)    <= 2000
  orchestrator plan, running stack (median, ms) $(m plan.json)    <= 300
OUT

#!/usr/bin/env bash
# Whole-process benchmarks (hyperfine medians) and Go benchmarks, with the
# anchor (the real docker compose CLI, built from the module in go.mod) run
# in the same session so ratios compare like with like.
set -euo pipefail
cd "$(dirname "$0")/.."

cache="${XDG_CACHE_HOME:-$HOME/.cache}/orchestrator/testenv"
mkdir -p "$cache"
if ! command -v hyperfine >/dev/null; then
  echo "bench: installing hyperfine (Debian package)" >&2
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine >/dev/null
  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine >/dev/null; fi
fi
compose="$cache/docker-compose-v5.6.0"
if [ ! -x "$compose" ]; then
  echo "bench: building docker compose v5.6.0 (once per machine)" >&2
  go build -o "$compose.tmp" github.com/docker/compose/v5/cmd && mv "$compose.tmp" "$compose"
fi
go build -o bin/orchestrator ./cmd/orchestrator
orch="$PWD/bin/orchestrator"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp examples/platform/stack.yaml "$work/platform.yaml"
for n in 125 250 500; do go run ./hack/genspec -n "$n" > "$work/svc$n.yaml"; done
# Render once so state exists (the timed runs reuse it, as users do) and so
# the anchor has the same compose files to read.
for s in platform svc125 svc250 svc500; do
  "$orch" render -f "$work/$s.yaml" --state-dir "$work/state-$s" -o "$work/out-$s" >/dev/null
done
export OPENAI_API_KEY=bench

hf() { hyperfine -N --warmup 3 --min-runs "${RUNS:-30}" --export-json "$work/$1.json" "${@:2}" >/dev/null 2>&1; }
median() { python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"]; print(" ".join("%.1f" % (x["median"]*1000) for x in r))' "$work/$1.json"; }

hf version "$orch version"
hf platform "$orch render -f $work/platform.yaml --state-dir $work/state-platform -o $work/out-platform" \
            "$compose -f $work/out-platform/docker-compose.yml config -q"
hf svc "$orch render -f $work/svc125.yaml --state-dir $work/state-svc125 -o $work/out-svc125" \
       "$orch render -f $work/svc250.yaml --state-dir $work/state-svc250 -o $work/out-svc250" \
       "$orch render -f $work/svc500.yaml --state-dir $work/state-svc500 -o $work/out-svc500" \
       "$compose -f $work/out-svc500/docker-compose.yml config -q"

read -r v <<<"$(median version)"
read -r rp cp <<<"$(median platform)"
read -r r125 r250 r500 c500 <<<"$(median svc)"
ratio() { python3 -c "print('%.2f' % ($1/$2))"; }
cat <<OUT
whole-process medians (hyperfine, ${RUNS:-30}+ runs, ms)        target    result
  orchestrator version                          $v      <= 15
  orchestrator render --phase=1 platform        $rp      <= 20
  docker compose config -q platform (anchor)    $cp
    ratio render/compose-config                 $(ratio "$rp" "$cp")
  orchestrator render 125 services              $r125
  orchestrator render 250 services              $r250
  orchestrator render 500 services              $r500     <= 250
  docker compose config -q 500 (anchor)         $c500
    ratio render500/compose-config500           $(ratio "$r500" "$c500")
    growth 250->500 (2.00 = linear)             $(ratio "$r500" "$r250")
OUT

echo
echo "Go benchmarks (go test -bench, -benchmem):"
go test -run '^$' -bench . -benchmem -count 5 ./internal/... | grep -E '^(Benchmark|ok|PASS)' || true

echo
./hack/bench-up.sh

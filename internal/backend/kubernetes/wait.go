package kubernetes

import (
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/aipairpro/orchestrator/internal/model"
)

// waitScript waits until host:port accepts a TCP connection: through the
// Service, which Kubernetes routes only to ready pods, so an answer means
// the dependency passed its readiness probe (its healthcheck). It runs in
// the dependant's own image (Options.WaitImage replaces it), the one image
// sure to be on the node and allowed by the cluster, and uses the first
// tool the image has: bash, python, perl, nc or node. It is shipped once,
// in the ConfigMap WaitConfigMap, and mounted at waitDir.
//
// Arguments: $1 host, $2 port, $3 what is waited for (for the log).
const waitScript = `#!/bin/sh
# Rendered by orchestrator: waits until a dependency's Service answers.
host=$1 port=$2 want=$3
py='import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 3)'
js='const s = require("net").connect(+process.argv[2], process.argv[1], () => process.exit(0)); s.on("error", () => process.exit(1)); s.setTimeout(3000, () => process.exit(1))'
probe() {
  if command -v bash >/dev/null 2>&1; then
    bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$host" "$port" 2>/dev/null
  elif command -v python3 >/dev/null 2>&1; then
    python3 -c "$py" "$host" "$port" 2>/dev/null
  elif command -v python >/dev/null 2>&1; then
    python -c "$py" "$host" "$port" 2>/dev/null
  elif command -v perl >/dev/null 2>&1; then
    perl -MIO::Socket::INET -e 'exit(IO::Socket::INET->new(PeerAddr => $ARGV[0], PeerPort => $ARGV[1], Timeout => 3) ? 0 : 1)' "$host" "$port" 2>/dev/null
  elif command -v nc >/dev/null 2>&1; then
    if nc -h 2>&1 | grep -q -- ' -z'; then
      nc -z -w 3 "$host" "$port" 2>/dev/null
      return
    fi
    # BusyBox's nc has no -z: it connected if it still runs after its
    # 3 s connect timeout, or ended without error.
    nc -w 3 "$host" "$port" </dev/null >/dev/null 2>&1 &
    pid=$!
    i=0
    while [ "$i" -lt 4 ]; do
      sleep 1
      kill -0 "$pid" 2>/dev/null || { wait "$pid"; return; }
      i=$((i + 1))
    done
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
  elif command -v node >/dev/null 2>&1; then
    node -e "$js" "$host" "$port" 2>/dev/null
  else
    echo "cannot wait for $host:$port: the image has none of bash, python, perl, nc or node; give a wait image" >&2
    exit 1
  fi
}
echo "waiting for $host:$port ($want)"
n=0
until probe; do
  n=$((n + 1))
  [ $((n % 15)) -eq 0 ] && echo "still waiting for $host:$port ($want)"
  sleep 2
done
echo "$host:$port answers ($want)"
`

// WaitConfigMap holds waitScript.
const WaitConfigMap = "orchestrator-wait"

const (
	waitDir       = "/orchestrator-wait"
	waitScriptKey = "wait.sh"
)

// waits are the init containers that hold a pod until its dependencies
// answer, in the order the model lists them. A dependency on a one-shot
// service (a Job: postgres-init) waits for what that job waits for: a pod
// cannot see a Job complete without API access, so apply runs a Job to
// completion before it applies the Job's dependants.
func (r *renderer) waits(s *model.Service, sc *corev1.SecurityContext) []corev1.Container {
	var out []corev1.Container
	seen := map[string]bool{}
	var visit func(deps []model.Dependency, via string)
	visit = func(deps []model.Dependency, via string) {
		for _, dep := range deps {
			if seen[dep.Service] {
				continue
			}
			seen[dep.Service] = true
			if _, gone := r.omitted[dep.Service]; gone {
				r.warn("%s waits for %s in Phase 1, which is not rendered for Kubernetes: %s starts without waiting", s.Name, dep.Service, s.Name)
				continue
			}
			t, ok := r.services[dep.Service]
			if !ok {
				r.warn("%s depends on %s, which the deployment does not have", s.Name, dep.Service)
				continue
			}
			if t.OneShot {
				visit(t.DependsOn, dep.Service)
				continue
			}
			if len(t.Ports) == 0 {
				r.warn("%s waits for %s in Phase 1, which listens on no port to wait on: %s starts without waiting", s.Name, t.Name, s.Name)
				continue
			}
			if !shareNetwork(s, t) {
				r.warn("%s waits for %s in Phase 1, but they share no network, so no NetworkPolicy lets it ask: %s starts without waiting", s.Name, t.Name, s.Name)
				continue
			}
			want := string(dep.Condition)
			if via != "" {
				want += " for " + via
			}
			image := s.Image
			if r.opts.WaitImage != "" {
				image = r.opts.WaitImage
			}
			out = append(out, corev1.Container{
				Name:            dnsLabel("wait-", t.Name),
				Image:           image,
				ImagePullPolicy: corev1.PullIfNotPresent,
				Command:         []string{"sh", waitDir + "/" + waitScriptKey, t.Name, strconv.Itoa(t.Ports[0]), want},
				VolumeMounts:    []corev1.VolumeMount{{Name: WaitConfigMap, MountPath: waitDir, ReadOnly: true}},
				SecurityContext: sc,
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
					Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")},
				},
			})
		}
	}
	visit(s.DependsOn, "")
	if len(out) > 0 {
		r.waitUsed = true
	}
	return out
}

// waitConfigMap ships the wait script, in the namespace's file.
func (r *renderer) waitConfigMap() {
	if !r.waitUsed {
		return
	}
	cm := &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: meta(WaitConfigMap, r.stackLabels()),
		Data:       map[string]string{waitScriptKey: waitScript},
	}
	cm.Namespace = r.ns
	r.byFile[NamespaceFile] = append(r.byFile[NamespaceFile], cm)
}

// waitVolume is the pod volume of the wait script.
func waitVolume() corev1.Volume {
	return corev1.Volume{Name: WaitConfigMap, VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: WaitConfigMap}, DefaultMode: ptr(int32(0o555)),
	}}}
}

func shareNetwork(a, b *model.Service) bool {
	on := map[string]bool{}
	for _, n := range effectiveNetworks(a) {
		on[n] = true
	}
	for _, n := range effectiveNetworks(b) {
		if on[n] {
			return true
		}
	}
	return false
}

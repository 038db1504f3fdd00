package kubernetes_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/aipairpro/orchestrator/internal/backend/kubernetes"
	"github.com/aipairpro/orchestrator/internal/model"
)

// renderModel renders a hand-made deployment without secret state.
func renderModel(t *testing.T, services ...model.Service) *kubernetes.Artifacts {
	t.Helper()
	d := &model.Deployment{
		Name: "probe", Domain: "probe.test", Services: services,
		Networks: []model.Network{{Name: "internal", Internal: true}},
	}
	arts, err := kubernetes.Render(context.Background(), d, kubernetes.Options{})
	require.NoError(t, err)
	return arts
}

func container(t *testing.T, arts *kubernetes.Artifacts, name string) corev1.Container {
	t.Helper()
	pod, ok := podTemplates(t, arts.Objects)[name]
	require.True(t, ok, name)
	return pod.Spec.Containers[0]
}

// TestProbes: readiness from every healthcheck; liveness (behind a startup
// probe for the start period) only for a stateless service whose check
// talks to the container itself.
func TestProbes(t *testing.T) {
	health := func(test ...string) *model.Healthcheck {
		return &model.Healthcheck{Test: test, IntervalSec: 10, TimeoutSec: 5, Retries: 3, StartSec: 60}
	}
	arts := renderModel(t,
		model.Service{Name: "web", Image: "web:1", Ports: []int{8080}, Replicas: 1, Networks: []string{"internal"},
			Health: health("CMD-SHELL", "wget -q -O /dev/null http://127.0.0.1:8080/healthz")},
		model.Service{Name: "db", Image: "db:1", Ports: []int{5432}, Replicas: 1, Stateful: true, Networks: []string{"internal"},
			Health: health("CMD", "pg_isready", "-h", "127.0.0.1")},
		model.Service{Name: "worker", Image: "worker:1", Replicas: 1, Networks: []string{"internal"},
			Health: health("CMD", "/app/worker", "healthcheck")},
		model.Service{Name: "front", Image: "front:1", Ports: []int{80}, Replicas: 1, Networks: []string{"internal"},
			Health: health("CMD", "wget", "-q", "http://db:5432/")},
		model.Service{Name: "quiet", Image: "quiet:1", Replicas: 1, Networks: []string{"internal"},
			Health: &model.Healthcheck{Test: []string{"NONE"}}},
	)
	web := container(t, arts, "web")
	require.NotNil(t, web.ReadinessProbe)
	assert.Equal(t, []string{"sh", "-c", "wget -q -O /dev/null http://127.0.0.1:8080/healthz"}, web.ReadinessProbe.Exec.Command)
	assert.Equal(t, int32(10), web.ReadinessProbe.PeriodSeconds)
	assert.Equal(t, int32(5), web.ReadinessProbe.TimeoutSeconds)
	assert.Equal(t, int32(3), web.ReadinessProbe.FailureThreshold)
	require.NotNil(t, web.LivenessProbe)
	assert.Equal(t, int32(6), web.LivenessProbe.FailureThreshold)
	require.NotNil(t, web.StartupProbe)
	assert.Equal(t, int32(6+3), web.StartupProbe.FailureThreshold, "60 s of start period at 10 s, then the retries")

	db := container(t, arts, "db")
	assert.Equal(t, []string{"pg_isready", "-h", "127.0.0.1"}, db.ReadinessProbe.Exec.Command, "CMD runs as is")
	assert.Nil(t, db.LivenessProbe, "never restart a data service on a failed check")
	assert.Nil(t, container(t, arts, "worker").LivenessProbe, "the check may reach other services")
	assert.Nil(t, container(t, arts, "front").LivenessProbe, "the check reaches another service")
	q := container(t, arts, "quiet")
	assert.Nil(t, q.ReadinessProbe)
	assert.Nil(t, q.LivenessProbe)
}

// TestProbeThroughOwnName: a check that reaches the service by its own
// name (Temporal's `--address temporal:7233`) would go through the
// Service, which routes only to ready pods, and never pass; it runs
// against the pod's own address. The rewritten command is run by sh here.
func TestProbeThroughOwnName(t *testing.T) {
	arts := renderModel(t,
		model.Service{Name: "temporal", Image: "temporal:1", Ports: []int{7233}, Replicas: 1, Networks: []string{"internal"},
			Health: &model.Healthcheck{Test: []string{"CMD", "temporal", "operator", "cluster", "health", "--address", "temporal:7233", "it's"}}},
		model.Service{Name: "es", Image: "es:1", Ports: []int{9200}, Replicas: 1, Networks: []string{"internal"},
			Health: &model.Healthcheck{Test: []string{"CMD-SHELL", "curl -fsS http://es:9200/ && echo ok"}}},
	)
	c := container(t, arts, "temporal")
	require.NotNil(t, c.ReadinessProbe)
	cmd := c.ReadinessProbe.Exec.Command
	require.Equal(t, []string{"sh", "-c"}, cmd[:2])
	assert.Nil(t, c.LivenessProbe)
	var podIP bool
	for _, e := range c.Env {
		podIP = podIP || (e.Name == "POD_IP" && e.ValueFrom != nil && e.ValueFrom.FieldRef.FieldPath == "status.podIP")
	}
	assert.True(t, podIP, "POD_IP comes from the pod's status")

	// Run it: a stand-in `temporal` prints its arguments.
	bin := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(bin, "temporal"), []byte("#!/bin/sh\nprintf '%s|' \"$@\"\n"), 0o755))
	run := exec.Command(cmd[0], cmd[1:]...)
	run.Env = []string{"PATH=" + bin + ":/usr/bin:/bin", "POD_IP=10.244.0.7"}
	out, err := run.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Equal(t, "operator|cluster|health|--address|10.244.0.7:7233|it's|", string(out))

	es := container(t, arts, "es").ReadinessProbe.Exec.Command
	assert.Equal(t, []string{"sh", "-c", `curl -fsS http://${POD_IP}:9200/ && echo ok`}, es)
}

// TestWorkloadKinds: stateful services are StatefulSets with a claim
// template sized from the model, one-shot services Jobs, the rest
// Deployments; a Deployment with a claim of its own is recreated, not
// rolled; the app's replica count is its autoscaler's.
func TestWorkloadKinds(t *testing.T) {
	f := "../../../examples/platform/stack.yaml"
	r := renderWith(t, f, t.TempDir(), false, kubernetes.Options{StorageClass: "fast"})
	kinds := map[string]string{}
	for _, w := range r.arts.Workloads {
		kinds[w.Service] = w.Kind
	}
	for _, s := range r.dep.Services {
		want := "Deployment"
		if s.OneShot {
			want = "Job"
		} else if s.Stateful {
			want = "StatefulSet"
		}
		if k, ok := kinds[s.Name]; ok {
			assert.Equal(t, want, k, s.Name)
		}
	}
	for _, o := range r.arts.Objects {
		switch w := o.(type) {
		case *appsv1.StatefulSet:
			if w.Name == "postgres" {
				require.Len(t, w.Spec.VolumeClaimTemplates, 1)
				pvc := w.Spec.VolumeClaimTemplates[0]
				assert.Equal(t, "postgres-data", pvc.Name)
				assert.Equal(t, "20Gi", pvc.Spec.Resources.Requests.Storage().String())
				assert.Equal(t, "fast", *pvc.Spec.StorageClassName)
			}
		case *appsv1.Deployment:
			switch w.Name {
			case "postiz":
				assert.Equal(t, appsv1.RecreateDeploymentStrategyType, w.Spec.Strategy.Type, "postiz mounts a claim of its own")
			case "app":
				assert.Nil(t, w.Spec.Replicas, "the autoscaler owns the app's replicas")
			case "worker":
				assert.Equal(t, int32(1), *w.Spec.Replicas)
			}
		case *corev1.Service:
			found := false
			for _, s := range r.dep.Services {
				found = found || s.Name == w.Name
			}
			assert.True(t, found, "Service %s is named like a compose service", w.Name)
		}
	}
}

// TestWaitScript runs the rendered wait script (from its ConfigMap) with
// each tool it may find in an image, alone on PATH: it returns once the
// port answers, keeps waiting while it does not, and fails plainly when
// the image has no tool.
func TestWaitScript(t *testing.T) {
	r := renderWith(t, "../../../examples/minimal/stack.yaml", t.TempDir(), false, kubernetes.Options{})
	var script string
	for _, o := range r.arts.Objects {
		if cm, ok := o.(*corev1.ConfigMap); ok && cm.Name == kubernetes.WaitConfigMap {
			script = cm.Data["wait.sh"]
		}
	}
	require.NotEmpty(t, script)
	path := filepath.Join(t.TempDir(), "wait.sh")
	require.NoError(t, os.WriteFile(path, []byte(script), 0o644))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	// Cleanup, not defer: the subtests run in parallel, after this returns.
	t.Cleanup(func() { ln.Close() })
	open := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closedPort := strconv.Itoa(closed.Addr().(*net.TCPAddr).Port)
	require.NoError(t, closed.Close())

	tools := map[string]string{}
	for _, tool := range []string{"bash", "python3", "perl", "node"} {
		if p, err := exec.LookPath(tool); err == nil {
			if tool == "python3" {
				// A pyenv shim needs its own PATH: use the interpreter itself.
				out, err := exec.Command(p, "-c", "import sys; print(sys.executable)").Output()
				require.NoError(t, err)
				p = strings.TrimSpace(string(out))
			}
			tools[tool] = p
		}
	}
	if bb := busybox(); bb != "" {
		tools["nc"] = bb
	}
	for _, tool := range []string{"bash", "python3", "perl", "node", "nc"} {
		t.Run(tool, func(t *testing.T) {
			t.Parallel()
			p, ok := tools[tool]
			if !ok {
				t.Skipf("%s is not on this machine", tool)
			}
			bin := toolDir(t, map[string]string{tool: p})
			out, err := runWait(t, path, bin, open, 20*time.Second)
			require.NoError(t, err, "%s", out)
			assert.Contains(t, out, "answers (service_healthy)")

			out, err = runWait(t, path, bin, closedPort, 3*time.Second)
			require.Error(t, err, "returned although nothing listens: %s", out)
			assert.Contains(t, out, "waiting for 127.0.0.1:"+closedPort)
		})
	}
	t.Run("no tool", func(t *testing.T) {
		t.Parallel()
		out, err := runWait(t, path, toolDir(t, nil), open, 10*time.Second)
		require.Error(t, err)
		assert.Contains(t, out, "give a wait image")
	})
}

// toolDir is a PATH directory holding only the given tools, sleep and grep.
func toolDir(t *testing.T, tools map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for _, base := range []string{"sleep", "grep"} {
		p, err := exec.LookPath(base)
		require.NoError(t, err)
		require.NoError(t, os.Symlink(p, filepath.Join(dir, base)))
	}
	for name, p := range tools {
		require.NoError(t, os.Symlink(p, filepath.Join(dir, name)))
	}
	return dir
}

func runWait(t *testing.T, script, path, port string, timeout time.Duration) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", script, "127.0.0.1", port, "service_healthy")
	cmd.Env = []string{"PATH=" + path}
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// busybox finds a static BusyBox (its nc has no -z): on PATH, or the one
// hack/testenv unpacks into its cache.
func busybox() string {
	if p, err := exec.LookPath("busybox"); err == nil {
		return p
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	found, _ := filepath.Glob(filepath.Join(cache, "orchestrator", "testenv", "busybox-static", "*", "bin", "busybox"))
	if len(found) == 0 {
		return ""
	}
	return found[0]
}

package kubernetes_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/aipairpro/orchestrator/internal/backend/kubernetes"
)

// kube is the project's test cluster (hack/testenv/kube-cluster.sh): a
// real kube-apiserver with Pod Security admission.
type kube struct {
	kubectl, kubeconfig string
}

// testCluster is the shared test cluster (main_test.go): started on first
// use, stopped at the end of the test binary if it started it. It never
// skips: without the real API server the claim is unproven.
func testCluster(t *testing.T) kube {
	t.Helper()
	return sharedCluster(t)
}

// run runs kubectl with stdin; it returns stdout and stderr.
func (k kube) run(t *testing.T, stdin []byte, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(k.kubectl, append([]string{"--kubeconfig", k.kubeconfig, "--request-timeout", "60s"}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// waitServiceAccount polls, with a deadline, until the namespace's default
// ServiceAccount exists.
func (k kube) waitServiceAccount(t *testing.T, ns string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, stderr, err := k.run(t, nil, "get", "serviceaccount", "default", "-n", ns)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("namespace %s has no default ServiceAccount after 60 s: %s", ns, stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestServerDryRunOnRealCluster hands every example's render, Secrets
// included, to a real API server: the namespace is created for real, then
// `kubectl apply --server-side --dry-run=server -k DIR` validates and
// admits every object (no warning allowed), each workload's pod template
// is admitted as a Pod by the namespace's Pod Security enforcement, and, as
// a control, a namespace enforcing restricted admits exactly the workloads
// documented restricted and refuses the others.
func TestServerDryRunOnRealCluster(t *testing.T) {
	k := testCluster(t)
	suffix := fmt.Sprintf("%x", time.Now().UnixNano()&0xffffff)
	for _, f := range examples(t) {
		name := exampleName(f)
		t.Run(name, func(t *testing.T) {
			ns := "render-" + name + "-" + suffix
			r := renderWith(t, f, t.TempDir(), false, kubernetes.Options{Namespace: ns, IncludeSecrets: true})
			dir := t.TempDir()
			var nsDoc []byte
			for _, file := range r.arts.Files {
				require.NoError(t, os.WriteFile(filepath.Join(dir, file.Path), file.Content, 0o600))
				if file.Path == kubernetes.NamespaceFile {
					nsDoc = documents(t, file.Content)[0]
				}
			}
			require.Contains(t, string(nsDoc), "kind: Namespace")
			_, stderr, err := k.run(t, nsDoc, "apply", "--server-side", "--field-manager=orchestrator-test", "-f", "-")
			require.NoError(t, err, stderr)
			t.Cleanup(func() { _, _, _ = k.run(t, nil, "delete", "namespace", ns, "--wait=false") })

			stdout, stderr, err := k.run(t, nil, "apply", "--server-side", "--field-manager=orchestrator", "--dry-run=server", "-k", dir)
			require.NoError(t, err, "%s\n%s", stdout, stderr)
			assert.NotContains(t, stderr, "Warning", "the API server warned")
			assert.Equal(t, len(r.arts.Objects), strings.Count(stdout, "(server dry run)"), stdout)

			restricted := "render-" + name + "-restricted-" + suffix
			_, stderr, err = k.run(t, nil, "create", "namespace", restricted)
			require.NoError(t, err, stderr)
			t.Cleanup(func() { _, _, _ = k.run(t, nil, "delete", "namespace", restricted, "--wait=false") })
			_, stderr, err = k.run(t, nil, "label", "namespace", restricted, "pod-security.kubernetes.io/enforce=restricted", "pod-security.kubernetes.io/enforce-version=latest")
			require.NoError(t, err, stderr)

			// Pod admission looks up the namespace's default ServiceAccount,
			// which the controller manager creates shortly after the namespace.
			k.waitServiceAccount(t, ns)
			k.waitServiceAccount(t, restricted)

			pods := podTemplates(t, r.arts.Objects)
			// A StatefulSet's pods get a volume per claim template from its
			// controller, as it does.
			for _, o := range r.arts.Objects {
				if sts, ok := o.(*appsv1.StatefulSet); ok {
					pod := pods[sts.Name]
					for _, c := range sts.Spec.VolumeClaimTemplates {
						pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: c.Name, VolumeSource: corev1.VolumeSource{
							PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: c.Name + "-" + sts.Name + "-0"},
						}})
					}
					pods[sts.Name] = pod
				}
			}
			for _, w := range r.arts.Workloads {
				pod := corev1.Pod{
					TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
					ObjectMeta: metav1.ObjectMeta{Name: w.Service + "-admission", Labels: pods[w.Service].Labels, Annotations: pods[w.Service].Annotations},
					Spec:       pods[w.Service].Spec,
				}
				doc, err := yaml.Marshal(pod)
				require.NoError(t, err)
				_, stderr, err := k.run(t, doc, "create", "--dry-run=server", "-n", ns, "-f", "-")
				assert.NoError(t, err, "%s: the namespace (%s) refuses its pod: %s", w.Service, r.arts.Level, stderr)
				assert.NotContains(t, stderr, "Warning", w.Service)

				_, stderr, err = k.run(t, doc, "create", "--dry-run=server", "-n", restricted, "-f", "-")
				if w.Level == kubernetes.Restricted {
					assert.NoError(t, err, "%s is documented restricted: %s", w.Service, stderr)
				} else {
					require.Error(t, err, "%s is documented baseline but restricted admits it", w.Service)
					assert.Contains(t, stderr, `violates PodSecurity "restricted:latest"`, w.Service)
				}
			}
		})
	}
}

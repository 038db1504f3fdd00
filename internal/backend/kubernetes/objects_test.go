package kubernetes_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	psaapi "k8s.io/pod-security-admission/api"
	psapolicy "k8s.io/pod-security-admission/policy"
	"sigs.k8s.io/yaml"

	"github.com/aipairpro/orchestrator/internal/backend/kubernetes"
)

// decoder is the API machinery's own YAML decoder for the kinds we render,
// in strict mode: an unknown or duplicated field is an error.
func decoder(t *testing.T) runtime.Decoder {
	t.Helper()
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme, networkingv1.AddToScheme,
		policyv1.AddToScheme, autoscalingv2.AddToScheme,
	} {
		require.NoError(t, add(scheme))
	}
	return json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme, scheme, json.SerializerOptions{Yaml: true, Strict: true})
}

// documents splits a multi-document YAML file.
func documents(t *testing.T, content []byte) [][]byte {
	t.Helper()
	var docs [][]byte
	rd := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(content)))
	for {
		doc, err := rd.Read()
		if errors.Is(err, io.EOF) {
			return docs
		}
		require.NoError(t, err)
		if len(bytes.TrimSpace(stripComments(doc))) > 0 {
			docs = append(docs, doc)
		}
	}
}

func stripComments(doc []byte) []byte {
	var out []string
	for _, l := range strings.Split(string(doc), "\n") {
		if !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return []byte(strings.Join(out, "\n"))
}

// TestObjectsRoundTripStrict decodes every document of every rendered file
// with the Kubernetes scheme in strict mode and requires the very object
// that was rendered back; the kustomization decodes strictly into
// kustomize's fields and lists exactly the other files.
func TestObjectsRoundTripStrict(t *testing.T) {
	dec := decoder(t)
	for _, f := range examples(t) {
		for _, include := range []bool{false, true} {
			r := renderWith(t, f, t.TempDir(), false, kubernetes.Options{IncludeSecrets: include})
			byKey := map[string]kubernetes.Object{}
			for _, o := range r.arts.Objects {
				byKey[o.GetObjectKind().GroupVersionKind().Kind+"/"+o.GetName()] = o
			}
			seen := 0
			var listed []string
			for _, file := range r.arts.Files {
				if file.Path == kubernetes.Kustomization {
					var k struct {
						APIVersion string   `json:"apiVersion"`
						Kind       string   `json:"kind"`
						Resources  []string `json:"resources"`
					}
					require.NoError(t, yaml.UnmarshalStrict(file.Content, &k))
					assert.Equal(t, "kustomize.config.k8s.io/v1beta1", k.APIVersion)
					assert.Equal(t, "Kustomization", k.Kind)
					listed = k.Resources
					continue
				}
				for _, doc := range documents(t, file.Content) {
					obj, gvk, err := dec.Decode(doc, nil, nil)
					require.NoError(t, err, "%s/%s: strict decode:\n%s", r.name, file.Path, doc)
					got, ok := obj.(kubernetes.Object)
					require.True(t, ok)
					want, ok := byKey[gvk.Kind+"/"+got.GetName()]
					require.True(t, ok, "%s/%s: %s %s is not among the rendered objects", r.name, file.Path, gvk.Kind, got.GetName())
					assert.True(t, equality.Semantic.DeepEqual(want, got), "%s/%s: %s %s does not read back as rendered", r.name, file.Path, gvk.Kind, got.GetName())
					if gvk.Kind != "Namespace" {
						assert.Equal(t, r.arts.Namespace, got.GetNamespace(), "%s %s", gvk.Kind, got.GetName())
					}
					seen++
				}
			}
			assert.Equal(t, len(r.arts.Objects), seen, "%s: every object is in exactly one file", r.name)
			var files []string
			for _, file := range r.arts.Files {
				if file.Path != kubernetes.Kustomization {
					files = append(files, file.Path)
				}
			}
			assert.ElementsMatch(t, files, listed, "%s: the kustomization lists every file", r.name)
			assert.Equal(t, kubernetes.NamespaceFile, listed[0], "the namespace comes first")
		}
	}
}

// TestRenderIsDeterministic renders each example twice, from two builds
// of the model and the same state, and compares every byte.
func TestRenderIsDeterministic(t *testing.T) {
	for _, f := range examples(t) {
		state := t.TempDir()
		a := renderWith(t, f, state, false, kubernetes.Options{IncludeSecrets: true})
		b := renderWith(t, f, state, false, kubernetes.Options{IncludeSecrets: true})
		require.Equal(t, len(a.arts.Files), len(b.arts.Files))
		for i := range a.arts.Files {
			assert.Equal(t, a.arts.Files[i].Path, b.arts.Files[i].Path)
			assert.True(t, bytes.Equal(a.arts.Files[i].Content, b.arts.Files[i].Content), "%s: %s differs between two renders", a.name, a.arts.Files[i].Path)
		}
		assert.Equal(t, report(a.arts), report(b.arts))
	}
}

// podTemplates returns each workload's pod template by service name.
func podTemplates(t *testing.T, objs []kubernetes.Object) map[string]corev1.PodTemplateSpec {
	t.Helper()
	out := map[string]corev1.PodTemplateSpec{}
	for _, o := range objs {
		switch w := o.(type) {
		case *appsv1.Deployment:
			out[w.Name] = w.Spec.Template
		case *appsv1.StatefulSet:
			out[w.Name] = w.Spec.Template
		case *batchv1.Job:
			out[w.Name] = w.Spec.Template
		}
	}
	return out
}

// TestPodSecurityLevels checks each workload's pods with the Pod Security
// admission's own checks (k8s.io/pod-security-admission, the code the API
// server runs): each meets the level it is documented at, the namespace
// enforces the weakest of them, and nothing is privileged.
func TestPodSecurityLevels(t *testing.T) {
	eval, err := psapolicy.NewEvaluator(psapolicy.DefaultChecks(), nil)
	require.NoError(t, err)
	wantLevel := map[string]kubernetes.PodSecurityLevel{"platform": kubernetes.Baseline, "minimal": kubernetes.Restricted, "laptop": kubernetes.Restricted}
	for _, f := range examples(t) {
		r := renderWith(t, f, t.TempDir(), false, kubernetes.Options{})
		t.Run(r.name, func(t *testing.T) {
			if want, ok := wantLevel[r.name]; ok {
				assert.Equal(t, want, r.arts.Level)
			}
			pods := podTemplates(t, r.arts.Objects)
			require.Len(t, pods, len(r.arts.Workloads))
			weakest := kubernetes.Restricted
			for _, w := range r.arts.Workloads {
				pod, ok := pods[w.Service]
				require.True(t, ok, w.Service)
				level := psaapi.LevelRestricted
				if w.Level == kubernetes.Baseline {
					level = psaapi.LevelBaseline
					weakest = kubernetes.Baseline
					// A baseline workload is baseline because it needs root,
					// not by accident: restricted must really fail.
					res := psapolicy.AggregateCheckResults(eval.EvaluatePod(psaapi.LevelVersion{Level: psaapi.LevelRestricted, Version: psaapi.LatestVersion()}, &pod.ObjectMeta, &pod.Spec))
					assert.False(t, res.Allowed, "%s is documented baseline but meets restricted", w.Service)
				}
				res := psapolicy.AggregateCheckResults(eval.EvaluatePod(psaapi.LevelVersion{Level: level, Version: psaapi.LatestVersion()}, &pod.ObjectMeta, &pod.Spec))
				assert.True(t, res.Allowed, "%s does not meet %s: %s", w.Service, level, res.ForbiddenDetail())
				assert.NotEmpty(t, w.Why, w.Service)
			}
			assert.Equal(t, weakest, r.arts.Level)
			var ns *corev1.Namespace
			for _, o := range r.arts.Objects {
				if n, ok := o.(*corev1.Namespace); ok {
					ns = n
				}
			}
			require.NotNil(t, ns)
			assert.Equal(t, string(r.arts.Level), ns.Labels["pod-security.kubernetes.io/enforce"])
			assert.Equal(t, "restricted", ns.Labels["pod-security.kubernetes.io/audit"])
		})
	}
}

// TestDockerSocketServicesAreLeftOut: Portainer and Kestra (whose task
// runner mounts the Docker socket) get no object and a warning saying why;
// the proxy is replaced by Ingresses; no pod mounts a host path.
func TestDockerSocketServicesAreLeftOut(t *testing.T) {
	for _, f := range examples(t) {
		r := renderWith(t, f, t.TempDir(), false, kubernetes.Options{})
		socket := map[string]bool{}
		for _, s := range r.dep.Services {
			for _, v := range s.Volumes {
				if v.HostPath == "/var/run/docker.sock" {
					socket[s.Name] = true
				}
			}
		}
		omitted := map[string]string{}
		for _, o := range r.arts.Omitted {
			omitted[o.Service] = o.Reason
		}
		for name := range socket {
			assert.Contains(t, omitted[name], "Docker socket", "%s: %s", r.name, name)
			found := false
			for _, w := range r.arts.Warnings {
				if strings.HasPrefix(w, name+" is not rendered") && strings.Contains(w, "Docker socket") {
					found = true
				}
			}
			assert.True(t, found, "%s: no warning for %s: %v", r.name, name, r.arts.Warnings)
		}
		assert.Contains(t, omitted["proxy"], "Ingress", r.name)
		for _, o := range r.arts.Objects {
			_, gone := omitted[o.GetLabels()[kubernetes.LabelName]]
			assert.False(t, gone, "%s: %s %s belongs to a service that is left out", r.name, o.GetObjectKind().GroupVersionKind().Kind, o.GetName())
		}
		for name, pod := range podTemplates(t, r.arts.Objects) {
			for _, v := range pod.Spec.Volumes {
				assert.Nil(t, v.HostPath, "%s: %s mounts a host path", r.name, name)
			}
		}
	}
	r := renderWith(t, "../../../examples/platform/stack.yaml", t.TempDir(), false, kubernetes.Options{})
	var names []string
	for _, o := range r.arts.Omitted {
		names = append(names, o.Service)
	}
	// Kestra renders: its Docker task runner is an opt-in (off here);
	// kestra-init only sets volume ownership, which fsGroup does.
	assert.Equal(t, []string{"kestra-init", "portainer", "proxy"}, names)
}

// TestRenderWithoutSecretState: without the secret state the files are the
// same apart from the inputs digests, and no Secret is built.
func TestRenderWithoutSecretState(t *testing.T) {
	dep := build(t, "../../../examples/platform/stack.yaml")
	arts, err := kubernetes.Render(context.Background(), dep, kubernetes.Options{})
	require.NoError(t, err)
	assert.Nil(t, arts.Secrets)
	for _, f := range arts.Files {
		assert.NotContains(t, string(f.Content), kubernetes.AnnotationInputs, f.Path)
	}
	_, err = kubernetes.Render(context.Background(), dep, kubernetes.Options{IncludeSecrets: true})
	assert.ErrorContains(t, err, "secret state")
}

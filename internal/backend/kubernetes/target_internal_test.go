package kubernetes

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

func TestApplySetID(t *testing.T) {
	s := newApplySet("acme", "acme")
	assert.Equal(t, "orchestrator-applyset-acme", s.parent)
	// What kubectl 1.37 wrote on the parent it made for
	// `kubectl apply --server-side --applyset=secret/orchestrator-applyset-acme -n acme --prune`
	// (and the cluster test has kubectl check it on a live set).
	assert.Equal(t, "applyset-dvVsbz40jhmQBcp8H7WO-V_ne39AySws8HRaATBmcBk-v1", s.id)
	assert.Empty(t, validation.IsValidLabelValue(s.id))
	assert.NotEqual(t, s.id, newApplySet("acme", "other").id, "the namespace is part of the ID")
}

func TestGroupKindsRoundTrip(t *testing.T) {
	kinds := map[schema.GroupKind]bool{
		{Kind: "ConfigMap"}: true, {Group: "apps", Kind: "Deployment"}: true, {Group: "networking.k8s.io", Kind: "NetworkPolicy"}: true,
	}
	text := formatGroupKinds(kinds)
	assert.Equal(t, "ConfigMap,Deployment.apps,NetworkPolicy.networking.k8s.io", text)
	back := map[schema.GroupKind]bool{}
	for _, gk := range parseGroupKinds(text) {
		back[gk] = true
	}
	assert.Equal(t, kinds, back)
	assert.Empty(t, parseGroupKinds(""))
}

func obj(apiVersion, kind, ns, name string, fields map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": apiVersion, "kind": kind, "metadata": map[string]any{"name": name}}}
	if ns != "" {
		u.SetNamespace(ns)
	}
	for k, v := range fields {
		u.Object[k] = v
	}
	return u
}

func TestDiffPaths(t *testing.T) {
	container := func(env string) map[string]any {
		return map[string]any{"spec": map[string]any{"template": map[string]any{"spec": map[string]any{"containers": []any{
			map[string]any{"name": "app", "image": "x:1", "env": []any{map[string]any{"name": "LOG_LEVEL", "value": env}}},
			map[string]any{"name": "sidecar", "image": "y:1"},
		}}}}}
	}
	a := obj("apps/v1", "Deployment", "ns", "app", container("info"))
	b := obj("apps/v1", "Deployment", "ns", "app", container("debug"))
	a.SetResourceVersion("1")
	b.SetResourceVersion("2")
	b.SetGeneration(2)
	b.Object["status"] = map[string]any{"replicas": int64(1)}
	assert.Equal(t, []string{"spec.template.spec.containers[app].env[LOG_LEVEL].value"}, diffPaths(normalize(a), normalize(b)))
	assert.Empty(t, diffPaths(normalize(a), normalize(a.DeepCopy())))

	c := a.DeepCopy()
	c.SetLabels(map[string]string{"x": "y"})
	unstructured.RemoveNestedField(c.Object, "spec", "template", "spec", "containers")
	assert.Equal(t, []string{"metadata.labels", "spec.template.spec.containers"}, diffPaths(normalize(a), normalize(c)))
	assert.Equal(t, "a, b, c, d and 2 more", summary([]string{"a", "b", "c", "d", "e", "f"}))
}

func TestReadiness(t *testing.T) {
	job := func(conds ...map[string]any) *unstructured.Unstructured {
		st := map[string]any{"startTime": "2026-01-01T00:00:00Z", "active": int64(1)}
		if len(conds) > 0 {
			var l []any
			for _, c := range conds {
				l = append(l, c)
			}
			st["conditions"] = l
		}
		return obj("batch/v1", "Job", "ns", "init", map[string]any{"spec": map[string]any{}, "status": st})
	}
	s, msg := readiness(job(), nil)
	assert.Equal(t, kstatus.InProgressStatus.String(), s, "kstatus calls a running Job current; Up waits for it to complete")
	assert.Contains(t, msg, "has not completed")
	s, _ = readiness(job(map[string]any{"type": "Complete", "status": "True"}), nil)
	assert.Equal(t, kstatus.CurrentStatus.String(), s)
	s, msg = readiness(job(map[string]any{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}), nil)
	assert.Equal(t, kstatus.FailedStatus.String(), s)
	assert.Contains(t, msg, "BackoffLimitExceeded")

	dep := obj("apps/v1", "Deployment", "ns", "app", map[string]any{
		"metadata": map[string]any{"name": "app", "namespace": "ns", "generation": int64(1)},
		"spec":     map[string]any{"replicas": int64(1)},
		"status": map[string]any{"observedGeneration": int64(1), "replicas": int64(1), "updatedReplicas": int64(1), "readyReplicas": int64(1), "availableReplicas": int64(1),
			"conditions": []any{
				map[string]any{"type": "Available", "status": "True"},
				map[string]any{"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
			}},
	})
	s, _ = readiness(dep, nil)
	assert.Equal(t, kstatus.CurrentStatus.String(), s)
	s, msg = readiness(dep, map[string]int64{"app": 2})
	assert.Equal(t, kstatus.InProgressStatus.String(), s, "below its autoscaler's minimum")
	assert.Contains(t, msg, "autoscaler")
}

func TestPruneDecisions(t *testing.T) {
	tg := &Target{stack: "acme", ns: "acme", set: newApplySet("acme", "acme")}
	member := func(u *unstructured.Unstructured, extra map[string]string) *unstructured.Unstructured {
		l := map[string]string{LabelApplySetPartOf: tg.set.id, LabelInstance: "acme", LabelManagedBy: ManagedBy}
		for k, v := range extra {
			l[k] = v
		}
		u.SetLabels(l)
		return u
	}
	keep := obj("apps/v1", "Deployment", "acme", "app", nil)
	live := map[string]*unstructured.Unstructured{}
	for _, u := range []*unstructured.Unstructured{
		member(keep.DeepCopy(), nil),
		member(obj("apps/v1", "Deployment", "acme", "postiz", nil), nil),
		member(obj("apps/v1", "StatefulSet", "acme", "postiz-redis", nil), map[string]string{LabelName: "postiz-redis"}),
		member(obj("v1", "PersistentVolumeClaim", "acme", "postiz-uploads", nil), nil),
		member(obj("v1", "Namespace", "", "acme", nil), nil),
		// The StatefulSet's claim: not a member, the StatefulSet's labels.
		func() *unstructured.Unstructured {
			u := obj("v1", "PersistentVolumeClaim", "acme", "redis-data-postiz-redis-0", nil)
			u.SetLabels(map[string]string{LabelName: "postiz-redis", LabelInstance: "acme", LabelManagedBy: ManagedBy})
			return u
		}(),
		// Another set's object and an object of no set are not ours.
		func() *unstructured.Unstructured {
			u := obj("v1", "ConfigMap", "acme", "theirs", nil)
			u.SetLabels(map[string]string{LabelApplySetPartOf: "applyset-other-v1"})
			return u
		}(),
		obj("v1", "ConfigMap", "acme", "kube-root-ca.crt", nil),
	} {
		live[refOf(u).key()] = u
	}
	d := &desired{ref: refOf(keep)}
	decide := func(volumes bool) map[string]bool {
		out := map[string]bool{}
		for _, dec := range tg.pruneDecisions(pruneInput{desired: []*desired{d}, live: live, volumes: volumes}) {
			out[dec.obj.GetKind()+"/"+dec.obj.GetName()] = dec.keep
		}
		return out
	}
	assert.Equal(t, map[string]bool{
		"Deployment/postiz": false, "StatefulSet/postiz-redis": false,
		"PersistentVolumeClaim/postiz-uploads": true, "PersistentVolumeClaim/redis-data-postiz-redis-0": true,
	}, decide(false))
	assert.Equal(t, map[string]bool{
		"Deployment/postiz": false, "StatefulSet/postiz-redis": false,
		"PersistentVolumeClaim/postiz-uploads": false, "PersistentVolumeClaim/redis-data-postiz-redis-0": false,
	}, decide(true))
}

func TestRecord(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "kubernetes")
	tg := &Target{stack: "acme", ns: "acme", set: newApplySet("acme", "acme"), stateDir: dir}
	got, err := tg.readRecord()
	require.NoError(t, err)
	assert.Nil(t, got, "no record yet")
	want := map[string]string{"kubernetes.v1/ConfigMap/acme/x": digest([]byte("x"))}
	require.NoError(t, tg.writeRecord(want))
	got, err = tg.readRecord()
	require.NoError(t, err)
	assert.Equal(t, want, got)
	fi, err := os.Stat(filepath.Join(dir, AppliedFile))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file left behind")

	other := &Target{stack: "acme", ns: "elsewhere", set: newApplySet("acme", "elsewhere"), stateDir: dir}
	got, err = other.readRecord()
	require.NoError(t, err)
	assert.Nil(t, got, "a record of another namespace is not this one's")

	require.NoError(t, tg.removeRecord())
	got, err = tg.readRecord()
	require.NoError(t, err)
	assert.Nil(t, got)
}

func TestSecretsPresent(t *testing.T) {
	pod := obj("apps/v1", "Deployment", "acme", "app", map[string]any{"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
		"volumes": []any{map[string]any{"name": "s", "secret": map[string]any{"secretName": "postgres-password"}}},
		"containers": []any{map[string]any{"name": "app", "env": []any{
			map[string]any{"name": "DATABASE_URL", "valueFrom": map[string]any{"secretKeyRef": map[string]any{"name": "app-env", "key": "DATABASE_URL"}}},
		}}},
	}}}})
	ds := []*desired{{ref: refOf(pod), obj: pod}}
	err := secretsPresent(ds)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "app-env, postgres-password")
	for _, name := range []string{"app-env", "postgres-password"} {
		s := obj("v1", "Secret", "acme", name, nil)
		ds = append(ds, &desired{ref: refOf(s), obj: s})
	}
	assert.NoError(t, secretsPresent(ds))
}

func TestAddress(t *testing.T) {
	r := ref{gk: schema.GroupKind{Group: "apps", Kind: "StatefulSet"}, version: "v1", namespace: "acme", name: "postgres"}
	assert.Equal(t, "kubernetes.apps/v1/StatefulSet/acme/postgres", r.Address())
	assert.Equal(t, "/apis/apps/v1/namespaces/acme/statefulsets/postgres", r.path(knownKinds[r.gk]))
	ns := ref{gk: schema.GroupKind{Kind: "Namespace"}, version: "v1", name: "acme"}
	assert.Equal(t, "kubernetes.v1/Namespace/acme", ns.Address())
	assert.Equal(t, "/api/v1/namespaces/acme", ns.path(knownKinds[ns.gk]))
	assert.True(t, strings.HasPrefix(typeOf(r), "apps/v1/"))
}

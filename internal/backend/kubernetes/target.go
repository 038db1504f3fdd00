package kubernetes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	clientset "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
)

// FieldManager is the server-side apply field manager of every object
// orchestrator applies. Up and Plan force conflicts, as `kubectl apply
// --server-side --force-conflicts` does: orchestrator is the tool of
// record for the stack's objects, and a field it sets that someone changed
// by hand since (kubectl edit, patch, scale) is drift, which the next up
// takes back (the Kubernetes documentation's advice for a controller that
// owns its objects). Forcing only takes over the fields orchestrator's
// manifests set: what others add and orchestrator does not set (the
// replica count the autoscaler owns, labels and annotations of other
// tools) stays theirs.
const FieldManager = "orchestrator"

// Target applies rendered Phase 2 objects to a Kubernetes cluster with
// server-side apply, plans against it with server-side dry runs, reports
// the stack's workloads and removes them. The stack's objects form an
// ApplySet (see applyset.go) whose parent is a Secret in the namespace.
type Target struct {
	stack, ns string
	context   string
	server    string
	stateDir  string
	set       applySet

	dyn  dynamic.Interface
	raw  rest.Interface // for apply: fieldValidation and the status code
	core clientset.Interface
	disc discovery.DiscoveryInterface

	mapperOnce sync.Once
	mapper     apimeta.RESTMapper

	warnings *warningSink
}

// TargetOptions select the cluster and the stack, as kubectl selects a
// cluster: a kubeconfig (KUBECONFIG, else ~/.kube/config), a context in it
// and a namespace.
type TargetOptions struct {
	// Stack is the stack's name (spec name); required.
	Stack string
	// Namespace holds the stack; default: the stack name (not the
	// context's namespace: the stack owns its namespace).
	Namespace string
	// Kubeconfig is a kubeconfig file; empty: KUBECONFIG (a list of files
	// merged, as kubectl does), else ~/.kube/config.
	Kubeconfig string
	// Context is the kubeconfig context; empty: its current-context.
	Context string
	// StateDir is this backend's directory in the state directory
	// (.orchestrator/kubernetes, say). Up records there what it applied
	// (AppliedFile), Plan reads it to tell drift (an object deleted or
	// edited by hand since) from changes nobody applied yet, Down removes
	// it. Empty: no record, so no drift is reported.
	StateDir string
	// RESTConfig, when set, is used instead of a kubeconfig (Kubeconfig
	// and Context are then ignored).
	RESTConfig *rest.Config
}

// NewTarget loads the cluster's connection. It does not contact the
// cluster.
func NewTarget(ctx context.Context, opts TargetOptions) (*Target, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if opts.Stack == "" {
		return nil, errors.New("kubernetes target: no stack name")
	}
	ns := opts.Namespace
	if ns == "" {
		ns = opts.Stack
	}
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		return nil, fmt.Errorf("namespace %q: %s", ns, strings.Join(errs, "; "))
	}
	t := &Target{stack: opts.Stack, ns: ns, stateDir: opts.StateDir, warnings: &warningSink{}}
	cfg := opts.RESTConfig
	if cfg == nil {
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		if opts.Kubeconfig != "" {
			rules.ExplicitPath = opts.Kubeconfig
		}
		cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: opts.Context})
		raw, err := cc.RawConfig()
		if err != nil {
			return nil, fmt.Errorf("kubeconfig: %w", err)
		}
		t.context = opts.Context
		if t.context == "" {
			t.context = raw.CurrentContext
		}
		if cfg, err = cc.ClientConfig(); err != nil {
			if clientcmd.IsEmptyConfig(err) {
				return nil, fmt.Errorf("no cluster to talk to: set KUBECONFIG or give a kubeconfig, as for kubectl (%w)", err)
			}
			return nil, fmt.Errorf("kubeconfig: %w", err)
		}
	} else {
		cfg = rest.CopyConfig(cfg)
	}
	t.server = cfg.Host
	// No client-side rate limit (client-go's default, 5 per second, would
	// make a 1,500-object apply last five minutes): at most concurrency
	// requests are in flight, and the API server's priority and fairness
	// protects it.
	cfg.QPS, cfg.Burst, cfg.RateLimiter = -1, 0, nil
	cfg.UserAgent = "orchestrator"
	// The API server's warnings (deprecations, Pod Security warn level)
	// are collected for the caller, not logged: this package prints
	// nothing.
	cfg.WarningHandler = nil
	cfg.WarningHandlerWithContext = t.warnings
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	if t.dyn, err = dynamic.NewForConfigAndClient(cfg, httpClient); err != nil {
		return nil, err
	}
	if t.raw, err = rest.UnversionedRESTClientForConfigAndClient(dynamic.ConfigFor(cfg), httpClient); err != nil {
		return nil, err
	}
	cs, err := clientset.NewForConfigAndClient(cfg, httpClient)
	if err != nil {
		return nil, err
	}
	t.core, t.disc = cs, cs.Discovery()
	t.set = newApplySet(opts.Stack, ns)
	return t, nil
}

// Namespace is the stack's namespace.
func (t *Target) Namespace() string { return t.ns }

// Describe names the cluster for messages and the plan: context and API
// server.
func (t *Target) Describe() string {
	if t.context != "" {
		return fmt.Sprintf("kubernetes (context %s, %s, namespace %s)", t.context, t.server, t.ns)
	}
	return fmt.Sprintf("kubernetes (%s, namespace %s)", t.server, t.ns)
}

// ApplySetID is the stack's ApplySet ID: the value of the
// applyset.kubernetes.io/part-of label on each of its objects.
func (t *Target) ApplySetID() string { return t.set.id }

// ApplySetParent is the name of the Secret that is the ApplySet's parent.
func (t *Target) ApplySetParent() string { return t.set.parent }

// Warnings returns, and forgets, what the API server warned about since
// the last call.
func (t *Target) Warnings() []string { return t.warnings.take() }

type warningSink struct {
	mu   sync.Mutex
	seen map[string]bool
	list []string
}

func (w *warningSink) HandleWarningHeaderWithContext(_ context.Context, code int, _ string, text string) {
	if code != 299 || text == "" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.seen == nil {
		w.seen = map[string]bool{}
	}
	if !w.seen[text] {
		w.seen[text] = true
		w.list = append(w.list, text)
	}
}

func (w *warningSink) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.list
	w.list, w.seen = nil, nil
	return out
}

// apiResource is where a kind lives in the API.
type apiResource struct {
	gvr        schema.GroupVersionResource
	gvk        schema.GroupVersionKind
	namespaced bool
}

// knownKinds are the kinds the renderer makes (and the ApplySet parent's),
// so that apply and plan need no discovery round trip.
var knownKinds = map[schema.GroupKind]apiResource{}

func init() {
	for _, k := range []struct {
		group, version, kind, plural string
		namespaced                   bool
	}{
		{"", "v1", "Namespace", "namespaces", false},
		{"", "v1", "ConfigMap", "configmaps", true},
		{"", "v1", "Secret", "secrets", true},
		{"", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", true},
		{"", "v1", "Service", "services", true},
		{"networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", true},
		{"networking.k8s.io", "v1", "Ingress", "ingresses", true},
		{"apps", "v1", "StatefulSet", "statefulsets", true},
		{"apps", "v1", "Deployment", "deployments", true},
		{"batch", "v1", "Job", "jobs", true},
		{"policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", true},
		{"autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", true},
	} {
		gk := schema.GroupKind{Group: k.group, Kind: k.kind}
		knownKinds[gk] = apiResource{
			gvr:        schema.GroupVersionResource{Group: k.group, Version: k.version, Resource: k.plural},
			gvk:        gk.WithVersion(k.version),
			namespaced: k.namespaced,
		}
	}
}

// resourceFor maps a kind to its resource: the known kinds directly,
// others (a kind an ApplySet parent lists that this version does not
// render) through discovery.
func (t *Target) resourceFor(gk schema.GroupKind) (apiResource, error) {
	if r, ok := knownKinds[gk]; ok {
		return r, nil
	}
	t.mapperOnce.Do(func() {
		t.mapper = restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(t.disc))
	})
	m, err := t.mapper.RESTMapping(gk)
	if err != nil {
		return apiResource{}, fmt.Errorf("kind %s: %w", gk, err)
	}
	return apiResource{gvr: m.Resource, gvk: m.GroupVersionKind, namespaced: m.Scope.Name() == apimeta.RESTScopeNameNamespace}, nil
}

// ref identifies one object.
type ref struct {
	gk        schema.GroupKind
	version   string
	namespace string
	name      string
}

func refOf(u *unstructured.Unstructured) ref {
	gvk := u.GroupVersionKind()
	return ref{gk: gvk.GroupKind(), version: gvk.Version, namespace: u.GetNamespace(), name: u.GetName()}
}

// key identifies an object whatever the version it was read at.
func (r ref) key() string { return r.gk.String() + "/" + r.namespace + "/" + r.name }

// apiVersion is group/version, or the version alone for the core group.
func (r ref) apiVersion() string {
	return schema.GroupVersion{Group: r.gk.Group, Version: r.version}.String()
}

// Address is the object's address in the plan:
// kubernetes.<apiVersion>/<Kind>/<namespace>/<name>, without the
// namespace for a cluster-scoped object.
func (r ref) Address() string {
	if r.namespace == "" {
		return "kubernetes." + r.apiVersion() + "/" + r.gk.Kind + "/" + r.name
	}
	return "kubernetes." + r.apiVersion() + "/" + r.gk.Kind + "/" + r.namespace + "/" + r.name
}

// path is the object's URL path.
func (r ref) path(res apiResource) string {
	var b strings.Builder
	if res.gvr.Group == "" {
		b.WriteString("/api/" + res.gvr.Version)
	} else {
		b.WriteString("/apis/" + res.gvr.Group + "/" + res.gvr.Version)
	}
	if res.namespaced {
		b.WriteString("/namespaces/" + r.namespace)
	}
	b.WriteString("/" + res.gvr.Resource + "/" + r.name)
	return b.String()
}

// client is the dynamic client of an object's resource.
func (t *Target) client(res apiResource, namespace string) dynamic.ResourceInterface {
	if res.namespaced {
		return t.dyn.Resource(res.gvr).Namespace(namespace)
	}
	return t.dyn.Resource(res.gvr)
}

// applyOpts are the options of one server-side apply request.
type applyOpts struct {
	dryRun bool
	// force takes over fields another manager changed since (drift
	// repair): see the package documentation of Force.
	force bool
}

// serverApply sends one server-side apply request with strict field
// validation (as kubectl apply --server-side does). created reports a new
// object (201).
func (t *Target) serverApply(ctx context.Context, r ref, res apiResource, body []byte, o applyOpts) (*unstructured.Unstructured, bool, error) {
	req := t.raw.Patch(types.ApplyPatchType).AbsPath(r.path(res)).
		Param("fieldManager", FieldManager).
		Param("fieldValidation", "Strict").
		Body(body)
	if o.force {
		req = req.Param("force", "true")
	}
	if o.dryRun {
		req = req.Param("dryRun", metav1.DryRunAll)
	}
	var code int
	data, err := req.Do(ctx).StatusCode(&code).Raw()
	if err != nil {
		// The error carries the API server's Status (the field and the
		// reason) only once decoded.
		var st metav1.Status
		if json.Unmarshal(data, &st) == nil && st.Kind == "Status" && st.Status == metav1.StatusFailure {
			return nil, false, &apierrors.StatusError{ErrStatus: st}
		}
		return nil, false, err
	}
	out := &unstructured.Unstructured{}
	if err := out.UnmarshalJSON(data); err != nil {
		return nil, false, fmt.Errorf("%s: decode the API server's answer: %w", r.Address(), err)
	}
	return out, code == http.StatusCreated, nil
}

// get reads one object; nil when it does not exist.
func (t *Target) get(ctx context.Context, r ref) (*unstructured.Unstructured, error) {
	res, err := t.resourceFor(r.gk)
	if err != nil {
		return nil, err
	}
	u, err := t.client(res, r.namespace).Get(ctx, r.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return u, err
}

// list reads the objects of one kind in the namespace (every namespace
// for a cluster-scoped kind), optionally by label selector.
func (t *Target) list(ctx context.Context, gk schema.GroupKind, selector string) ([]unstructured.Unstructured, error) {
	res, err := t.resourceFor(gk)
	if err != nil {
		return nil, err
	}
	l, err := t.client(res, t.ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", gk, err)
	}
	for i := range l.Items {
		// Items of a list carry no kind of their own.
		l.Items[i].SetGroupVersionKind(res.gvk)
	}
	return l.Items, nil
}

// remove deletes one object; its dependants (a Deployment's ReplicaSets
// and pods, a Job's pods) are deleted in the background. Gone already is
// fine.
func (t *Target) remove(ctx context.Context, r ref) error {
	res, err := t.resourceFor(r.gk)
	if err != nil {
		return err
	}
	policy := metav1.DeletePropagationBackground
	err = t.client(res, r.namespace).Delete(ctx, r.name, metav1.DeleteOptions{PropagationPolicy: &policy})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete %s: %w", r.Address(), err)
	}
	return nil
}

func patchOptions() metav1.PatchOptions { return metav1.PatchOptions{FieldManager: FieldManager} }

// parallel runs fn for every item, at most limit at a time, and joins
// every error (a failing object does not hide the others').
func parallel[T any](ctx context.Context, items []T, limit int, fn func(context.Context, T) error) error {
	if len(items) == 0 {
		return nil
	}
	sem := make(chan struct{}, limit)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, it := range items {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := fn(ctx, it); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// concurrency is how many requests run at once.
const concurrency = 16

// manifest turns a rendered object into what is sent: its JSON form
// without status and null timestamps, as the rendered files have it, with
// the ApplySet's label added.
func (t *Target) manifest(o Object) (*unstructured.Unstructured, error) {
	m, err := manifestJSON(o)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: jsonNumbers(m).(map[string]any)}
	if u.GetKind() == "" || u.GetAPIVersion() == "" {
		return nil, fmt.Errorf("%T %s has no kind or apiVersion", o, o.GetName())
	}
	labels := u.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels[LabelApplySetPartOf] = t.set.id
	u.SetLabels(labels)
	return u, nil
}

// jsonNumbers turns json.Number into int64 or float64, the types the
// unstructured helpers expect.
func jsonNumbers(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			t[k] = jsonNumbers(e)
		}
		return t
	case []any:
		for i, e := range t {
			t[i] = jsonNumbers(e)
		}
		return t
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i
		}
		f, _ := t.Float64()
		return f
	}
	return v
}

// sortedSet returns a set's members sorted.
func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

package kubernetes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

// DefaultTimeout bounds Up when UpOptions.Timeout is zero.
const DefaultTimeout = 5 * time.Minute

// UpOptions configure Up.
type UpOptions struct {
	// Timeout bounds the whole of Up: applying, running the Jobs that
	// others wait for, and waiting until every object is ready. Default
	// DefaultTimeout.
	Timeout time.Duration
	// PruneVolumes also deletes the PersistentVolumeClaims of services no
	// longer rendered, and their data. By default they are kept: they
	// leave the ApplySet, marked with AnnotationKept.
	PruneVolumes bool
	// OnEvent receives progress; nil discards it. Calls never overlap.
	OnEvent func(Event)
}

// Event is one step of Up or Down, for a progress display.
type Event struct {
	// Address is the object's plan address.
	Address string
	// Action is created, configured, unchanged, recreated, pruned, kept,
	// deleted, waiting, ready or completed.
	Action string
	// Detail says more (why it is recreated, what waits for a Job).
	Detail string
}

// ObjectResult is what Up did to one object.
type ObjectResult struct {
	Address string `json:"address"`
	// Action is created, configured (changed), unchanged or recreated (a
	// Job deleted and created again: its pod template cannot change, or
	// it had failed).
	Action string `json:"action"`
}

// UpResult is what Up did.
type UpResult struct {
	// Objects are the applied objects, in apply order.
	Objects []ObjectResult `json:"objects"`
	// Pruned are the addresses of the objects deleted because they are
	// no longer rendered.
	Pruned []string `json:"pruned,omitempty"`
	// Kept are PersistentVolumeClaims no longer rendered whose data was
	// kept (see UpOptions.PruneVolumes).
	Kept []string `json:"kept,omitempty"`
	// Warnings are the API server's warnings.
	Warnings []string `json:"warnings,omitempty"`
}

// Changed reports whether Up changed anything.
func (r *UpResult) Changed() bool {
	if len(r.Pruned) > 0 {
		return true
	}
	for _, o := range r.Objects {
		if o.Action != "unchanged" {
			return true
		}
	}
	return false
}

// Apply order. Objects of one wave are independent and go in parallel.
// Workloads wait for the Jobs they depend on (Workload.After), which run
// to completion first; everything else a workload needs it waits for in
// its init containers.
const (
	waveNamespace = iota
	waveConfig    // NetworkPolicies, ConfigMaps, Secrets, claims, Services
	waveData      // StatefulSets
	waveJobs      // Jobs
	waveApps      // Deployments
	waveTail      // budgets, autoscalers, Ingresses, anything else
)

var waveOf = map[string]int{
	"Namespace":               waveNamespace,
	"NetworkPolicy":           waveConfig,
	"ConfigMap":               waveConfig,
	"Secret":                  waveConfig,
	"PersistentVolumeClaim":   waveConfig,
	"Service":                 waveConfig,
	"StatefulSet":             waveData,
	"Job":                     waveJobs,
	"Deployment":              waveApps,
	"PodDisruptionBudget":     waveTail,
	"HorizontalPodAutoscaler": waveTail,
	"Ingress":                 waveTail,
}

// desired is one object to apply.
type desired struct {
	ref    ref
	res    apiResource
	obj    *unstructured.Unstructured
	body   []byte
	digest string
	wave   int
	// after are the Jobs that must complete before it is applied.
	after []string
}

func (d *desired) kind() string { return d.ref.gk.Kind }

// desiredObjects prepares the rendered objects (and the Secrets with their
// values) for apply, in apply order.
func (t *Target) desiredObjects(arts *Artifacts) ([]*desired, error) {
	if arts.Namespace != t.ns {
		return nil, fmt.Errorf("the objects were rendered for namespace %q, the target is namespace %q: render with the same namespace", arts.Namespace, t.ns)
	}
	after := map[string][]string{}
	jobs := map[string]bool{}
	for _, w := range arts.Workloads {
		after[w.Service] = w.After
		if w.Kind == "Job" {
			jobs[w.Service] = true
		}
	}
	objs := make([]Object, 0, len(arts.Objects)+len(arts.Secrets))
	objs = append(objs, arts.Objects...)
	for _, s := range arts.Secrets {
		objs = append(objs, s)
	}
	seen := map[string]bool{}
	var out []*desired
	for _, o := range objs {
		u, err := t.manifest(o)
		if err != nil {
			return nil, err
		}
		r := refOf(u)
		res, err := t.resourceFor(r.gk)
		if err != nil {
			return nil, err
		}
		if !res.namespaced {
			r.namespace = ""
			u.SetNamespace("")
		} else if r.namespace == "" {
			r.namespace = t.ns
			u.SetNamespace(t.ns)
		} else if r.namespace != t.ns {
			return nil, fmt.Errorf("%s is in namespace %s, outside the stack's namespace %s", r.Address(), r.namespace, t.ns)
		}
		if r.gk.Kind == "Namespace" && r.name != t.ns {
			return nil, fmt.Errorf("%s: the stack's namespace is %s", r.Address(), t.ns)
		}
		if seen[r.key()] {
			continue
		}
		seen[r.key()] = true
		body, err := json.Marshal(u.Object)
		if err != nil {
			return nil, err
		}
		wave, ok := waveOf[r.gk.Kind]
		if !ok {
			wave = waveTail
		}
		d := &desired{ref: r, res: res, obj: u, body: body, digest: digest(body), wave: wave}
		switch r.gk.Kind {
		case "Deployment", "StatefulSet", "Job":
			for _, j := range after[r.name] {
				if jobs[j] {
					d.after = append(d.after, j)
				}
			}
		}
		out = append(out, d)
	}
	slices.SortStableFunc(out, func(a, b *desired) int { return a.wave - b.wave })
	if err := secretsPresent(out); err != nil {
		return nil, err
	}
	return out, nil
}

// secretsPresent: every Secret a pod reads is among the objects. A render
// without the secret state (Options.Secrets) names them and builds none,
// and its pods would wait forever for them.
func secretsPresent(ds []*desired) error {
	have := map[string]bool{}
	for _, d := range ds {
		if d.ref.gk == (schema.GroupKind{Kind: "Secret"}) {
			have[d.ref.name] = true
		}
	}
	missing := map[string]bool{}
	for _, d := range ds {
		spec, found, _ := unstructured.NestedMap(d.obj.Object, "spec", "template", "spec")
		if !found {
			continue
		}
		for _, name := range secretRefs(spec) {
			if !have[name] {
				missing[name] = true
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("the pods read Secrets the render did not build (%s): render with the secret state (Options.Secrets)", strings.Join(sortedSet(missing), ", "))
	}
	return nil
}

// secretRefs are the Secrets a pod spec reads: volumes, env and envFrom.
func secretRefs(spec map[string]any) []string {
	var out []string
	vols, _, _ := unstructured.NestedSlice(spec, "volumes")
	for _, v := range vols {
		if m, ok := v.(map[string]any); ok {
			if name, found, _ := unstructured.NestedString(m, "secret", "secretName"); found {
				out = append(out, name)
			}
		}
	}
	for _, field := range []string{"initContainers", "containers"} {
		cs, _, _ := unstructured.NestedSlice(spec, field)
		for _, c := range cs {
			cm, _ := c.(map[string]any)
			env, _, _ := unstructured.NestedSlice(cm, "env")
			for _, e := range env {
				if em, ok := e.(map[string]any); ok {
					if name, found, _ := unstructured.NestedString(em, "valueFrom", "secretKeyRef", "name"); found {
						out = append(out, name)
					}
				}
			}
			from, _, _ := unstructured.NestedSlice(cm, "envFrom")
			for _, e := range from {
				if em, ok := e.(map[string]any); ok {
					if name, found, _ := unstructured.NestedString(em, "secretRef", "name"); found {
						out = append(out, name)
					}
				}
			}
		}
	}
	return out
}

// kindsOf is the set of kinds of the objects.
func kindsOf(ds []*desired) map[schema.GroupKind]bool {
	out := map[schema.GroupKind]bool{}
	for _, d := range ds {
		out[d.ref.gk] = true
	}
	return out
}

// listKinds are the kinds to read before apply or plan: the set's (the
// parent's list and what is rendered), every claim (prune looks at the
// claims StatefulSets made), and, when the parent is missing (deleted by
// hand), every kind the renderer makes, so no member is left behind.
func listKinds(kinds map[schema.GroupKind]bool, parent parentState) map[schema.GroupKind]bool {
	out := map[schema.GroupKind]bool{claimKind: true}
	for gk := range kinds {
		out[gk] = true
	}
	if !parent.exists {
		for gk := range knownKinds {
			out[gk] = true
		}
	}
	return out
}

// memberKinds are the kinds of the live members of the set.
func memberKinds(t *Target, live map[string]*unstructured.Unstructured) map[schema.GroupKind]bool {
	out := map[schema.GroupKind]bool{}
	for _, l := range live {
		if l.GetLabels()[LabelApplySetPartOf] == t.set.id {
			out[refOf(l).gk] = true
		}
	}
	return out
}

// liveObjects reads the live objects of the given kinds in the namespace
// (by kind, not by label, so that objects of the stack's names that are
// not its members are seen too), and the namespace itself, by key.
func (t *Target) liveObjects(ctx context.Context, kinds map[schema.GroupKind]bool) (map[string]*unstructured.Unstructured, error) {
	var gks []schema.GroupKind
	for gk := range kinds {
		gks = append(gks, gk)
	}
	var mu sync.Mutex
	out := map[string]*unstructured.Unstructured{}
	err := parallel(ctx, gks, concurrency, func(ctx context.Context, gk schema.GroupKind) error {
		res, err := t.resourceFor(gk)
		if err != nil {
			return err
		}
		var items []unstructured.Unstructured
		if gk.Kind == "Namespace" && gk.Group == "" {
			u, err := t.get(ctx, ref{gk: gk, version: "v1", name: t.ns})
			if err != nil {
				return err
			}
			if u != nil {
				items = append(items, *u)
			}
		} else if !res.namespaced {
			// A cluster-scoped kind: only the set's members.
			if items, err = t.list(ctx, gk, t.set.memberSelector()); err != nil {
				return err
			}
		} else if items, err = t.list(ctx, gk, ""); err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		for i := range items {
			u := &items[i]
			out[refOf(u).key()] = u
		}
		return nil
	})
	return out, err
}

// foreign returns the objects of the stack's names that belong to
// another ApplySet.
func (t *Target) foreign(ds []*desired, live map[string]*unstructured.Unstructured) []string {
	var out []string
	for _, d := range ds {
		if l := live[d.ref.key()]; l != nil {
			if id := l.GetLabels()[LabelApplySetPartOf]; id != "" && id != t.set.id {
				out = append(out, fmt.Sprintf("%s belongs to another ApplySet (%s=%s)", d.ref.Address(), LabelApplySetPartOf, id))
			}
		}
	}
	return out
}

// events serialises OnEvent calls.
type events struct {
	mu sync.Mutex
	fn func(Event)
}

func (e *events) emit(address, action, detail string) {
	if e == nil || e.fn == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.fn(Event{Address: address, Action: action, Detail: detail})
}

// Up applies the rendered objects with server-side apply (field manager
// FieldManager, conflicts forced: see FieldManager), prunes the stack's objects
// that are no longer rendered, and waits until every object is ready
// (kstatus: sigs.k8s.io/cli-utils/pkg/kstatus), all within
// UpOptions.Timeout. Objects go in waves (namespace; configuration,
// Secrets, claims and Services; data services; Jobs; apps; budgets,
// autoscalers and Ingresses), each wave in parallel; a workload that
// depends on a Job is applied once that Job has completed. A Job whose pod
// template changed, or that failed, is deleted and created again.
//
// When something is not ready in time Up returns a *WaitError that names
// each object, its condition, its failing pods' container states, recent
// events and log tails.
func (t *Target) Up(ctx context.Context, arts *Artifacts, opts UpOptions) (*UpResult, error) {
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	start := time.Now()
	deadline := start.Add(timeout)
	if len(arts.MissingEnv) > 0 {
		return nil, fmt.Errorf("not set in the environment: %s; the stack's secrets: come from the environment of whoever applies: set them and run again", strings.Join(arts.MissingEnv, ", "))
	}
	ds, err := t.desiredObjects(arts)
	if err != nil {
		return nil, err
	}
	parent, err := t.readParent(ctx)
	if err != nil {
		return nil, err
	}
	want := kindsOf(ds)
	all := kindsOf(ds)
	for gk := range parent.groupKinds {
		all[gk] = true
	}
	live, err := t.liveObjects(ctx, listKinds(all, parent))
	if err != nil {
		return nil, err
	}
	for gk := range memberKinds(t, live) {
		all[gk] = true
	}
	if ns := live[ref{gk: schema.GroupKind{Kind: "Namespace"}, name: t.ns}.key()]; ns != nil && ns.GetDeletionTimestamp() != nil {
		return nil, fmt.Errorf("namespace %s is being deleted: wait until it is gone (kubectl get namespace %s) and run again", t.ns, t.ns)
	}
	if f := t.foreign(ds, live); len(f) > 0 {
		return nil, fmt.Errorf("refusing to apply: %s", strings.Join(f, "; "))
	}

	u := &upRun{t: t, live: live, res: &UpResult{}, ev: &events{fn: opts.OnEvent}, deadline: deadline, start: start, timeout: timeout, record: map[string]string{}}
	if prev, err := t.readRecord(); err == nil {
		for k, v := range prev {
			u.record[k] = v
		}
	}
	defer func() { u.res.Warnings = t.Warnings() }()
	byWave := map[int][]*desired{}
	for _, d := range ds {
		byWave[d.wave] = append(byWave[d.wave], d)
	}

	// The namespace first: the ApplySet's parent lives in it.
	nsCreated := parent.namespaceCreated
	for _, d := range byWave[waveNamespace] {
		created, err := u.apply(ctx, d)
		if err != nil {
			return u.res, err
		}
		nsCreated = nsCreated || created
	}
	// Before anything else changes, the parent lists every kind the set
	// had and will have, so an interrupted run leaks nothing.
	if err := t.writeParent(ctx, all, nsCreated); err != nil {
		return u.res, err
	}
	err = u.applyAll(ctx, byWave[waveConfig])
	if err == nil {
		err = u.applyWorkloads(ctx, append(append(byWave[waveData], byWave[waveJobs]...), byWave[waveApps]...))
	}
	if err == nil {
		err = u.applyAll(ctx, byWave[waveTail])
	}
	if err != nil {
		if rerr := t.writeRecord(u.record); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return u.res, err
	}
	pr, err := t.prune(ctx, pruneInput{desired: ds, live: live, volumes: opts.PruneVolumes, ev: u.ev})
	if err == nil {
		for _, addr := range append(pr.pruned, pr.kept...) {
			delete(u.record, addr)
		}
		u.res.Pruned, u.res.Kept = pr.pruned, pr.kept
		// Pruned: the parent now lists exactly the kinds of the set.
		err = t.writeParent(ctx, want, nsCreated)
	}
	if rerr := t.writeRecord(u.record); rerr != nil {
		err = errors.Join(err, rerr)
	}
	if err != nil {
		return u.res, err
	}
	if err := t.waitReady(ctx, ds, waitInput{deadline: deadline, start: start, timeout: timeout, ev: u.ev}); err != nil {
		return u.res, err
	}
	return u.res, nil
}

// upRun is one Up in progress.
type upRun struct {
	t        *Target
	live     map[string]*unstructured.Unstructured
	ev       *events
	deadline time.Time
	start    time.Time
	timeout  time.Duration

	mu     sync.Mutex
	res    *UpResult
	record map[string]string
}

// applyAll applies objects in parallel.
func (u *upRun) applyAll(ctx context.Context, ds []*desired) error {
	return parallel(ctx, ds, concurrency, func(ctx context.Context, d *desired) error {
		_, err := u.apply(ctx, d)
		return err
	})
}

// apply applies one object, recreating a Job whose template changed or
// that failed. created reports a new object.
func (u *upRun) apply(ctx context.Context, d *desired) (created bool, err error) {
	t := u.t
	addr := d.ref.Address()
	l := u.live[d.ref.key()]
	recreated := ""
	if d.kind() == "Job" && l != nil {
		if failed, _ := jobFinished(l); failed != "" {
			if err := t.removeAndWait(ctx, d.ref, u.deadline); err != nil {
				return false, err
			}
			recreated, l = "it had failed: "+failed, nil
		}
	}
	out, created, err := t.serverApply(ctx, d.ref, d.res, d.body, applyOpts{force: true})
	if err != nil && d.kind() == "Job" && isImmutable(err) {
		if err := t.removeAndWait(ctx, d.ref, u.deadline); err != nil {
			return false, err
		}
		recreated, l = "its pod template changed, and a Job's cannot", nil
		out, created, err = t.serverApply(ctx, d.ref, d.res, d.body, applyOpts{force: true})
	}
	if err != nil {
		return false, fmt.Errorf("apply %s: %w", addr, explainAPIError(err))
	}
	action := "configured"
	switch {
	case recreated != "":
		action = "recreated"
	case created:
		action = "created"
	case l != nil && l.GetResourceVersion() == out.GetResourceVersion():
		action = "unchanged"
	}
	u.mu.Lock()
	u.res.Objects = append(u.res.Objects, ObjectResult{Address: addr, Action: action})
	u.record[addr] = d.digest
	u.mu.Unlock()
	u.ev.emit(addr, action, recreated)
	return created, nil
}

// applyWorkloads applies StatefulSets, Jobs and Deployments in that
// order, each batch in parallel; a workload that depends on Jobs is held
// back until they have completed.
func (u *upRun) applyWorkloads(ctx context.Context, ds []*desired) error {
	done := map[string]bool{}    // Jobs completed
	applied := map[string]bool{} // Jobs applied
	pending := ds
	for len(pending) > 0 {
		var ready, held []*desired
		for _, d := range pending {
			if slices.ContainsFunc(d.after, func(j string) bool { return !done[j] }) {
				held = append(held, d)
			} else {
				ready = append(ready, d)
			}
		}
		for _, wave := range []int{waveData, waveJobs, waveApps} {
			var batch []*desired
			for _, d := range ready {
				if d.wave == wave {
					batch = append(batch, d)
				}
			}
			if err := u.applyAll(ctx, batch); err != nil {
				return err
			}
			for _, d := range batch {
				if d.kind() == "Job" {
					applied[d.ref.name] = true
				}
			}
		}
		pending = held
		if len(pending) == 0 {
			return nil
		}
		// Wait for the Jobs the held workloads need.
		waitFor := map[string][]string{}
		for _, d := range pending {
			for _, j := range d.after {
				if !done[j] && applied[j] {
					waitFor[j] = append(waitFor[j], d.ref.name)
				}
			}
		}
		if len(waitFor) == 0 {
			var names []string
			for _, d := range pending {
				names = append(names, d.ref.name)
			}
			return fmt.Errorf("%s wait for Jobs that are not rendered", strings.Join(names, ", "))
		}
		if err := u.waitJobs(ctx, waitFor, pending, done); err != nil {
			return err
		}
	}
	return nil
}

// waitJobs polls the Jobs until at least one has completed (marked in
// done); a failed Job, or the deadline, ends Up with an explanation.
func (u *upRun) waitJobs(ctx context.Context, waitFor map[string][]string, held []*desired, done map[string]bool) error {
	t := u.t
	names := sortedKeys(waitFor)
	for _, j := range names {
		u.ev.emit(jobRef(t.ns, j).Address(), "waiting", "held until it completes: "+strings.Join(waitFor[j], ", "))
	}
	for {
		progressed := false
		for _, j := range names {
			l, err := t.get(ctx, jobRef(t.ns, j))
			if err != nil {
				return err
			}
			if l == nil {
				return fmt.Errorf("%s was deleted while %s waited for it", jobRef(t.ns, j).Address(), strings.Join(waitFor[j], ", "))
			}
			failed, complete := jobFinished(l)
			if failed != "" {
				return u.failure(ctx, held, []notReady{{ref: refOf(l), obj: l, status: "Failed", message: failed}})
			}
			if complete {
				done[j] = true
				progressed = true
				u.ev.emit(jobRef(t.ns, j).Address(), "completed", "")
			}
		}
		if progressed {
			return nil
		}
		if time.Now().After(u.deadline) {
			var nr []notReady
			for _, j := range names {
				l, err := t.get(ctx, jobRef(t.ns, j))
				if err != nil {
					return err
				}
				if l != nil {
					status, msg := readiness(l, nil)
					nr = append(nr, notReady{ref: refOf(l), obj: l, status: status, message: msg})
				}
			}
			// What the Jobs wait for (PostgreSQL for its init) is usually
			// the cause: the applied workloads that are not ready, too.
			others, err := t.members(ctx, map[schema.GroupKind]bool{{Group: "apps", Kind: "StatefulSet"}: true, {Group: "apps", Kind: "Deployment"}: true})
			if err != nil {
				return err
			}
			for _, key := range sortedKeys(others) {
				if status, msg := readiness(others[key], nil); status != kstatus.CurrentStatus.String() {
					nr = append(nr, notReady{ref: refOf(others[key]), obj: others[key], status: status, message: msg})
				}
			}
			return u.failure(ctx, held, nr)
		}
		if err := sleep(ctx, pollInterval); err != nil {
			return err
		}
	}
}

// failure builds the WaitError for objects that did not get ready and
// the workloads held back for them.
func (u *upRun) failure(ctx context.Context, held []*desired, nr []notReady) error {
	we := &WaitError{Timeout: u.timeout, Elapsed: time.Since(u.start)}
	for _, d := range held {
		we.NotApplied = append(we.NotApplied, d.ref.Address())
	}
	we.Failures = u.t.explain(ctx, nr)
	return we
}

func jobRef(ns, name string) ref {
	return ref{gk: schema.GroupKind{Group: "batch", Kind: "Job"}, version: "v1", namespace: ns, name: name}
}

// jobFinished reads a Job's conditions: failed says why it failed, if it
// did.
func jobFinished(u *unstructured.Unstructured) (failed string, complete bool) {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["status"] != "True" {
			continue
		}
		switch m["type"] {
		case "Complete":
			complete = true
		case "Failed":
			failed = fmt.Sprintf("%v: %v", m["reason"], m["message"])
		}
	}
	return failed, complete
}

// isImmutable: the API server refused a change of an immutable field.
func isImmutable(err error) bool {
	return apierrors.IsInvalid(err) && strings.Contains(err.Error(), "field is immutable")
}

// explainAPIError adds what to do to the errors people meet.
func explainAPIError(err error) error {
	switch {
	case apierrors.IsInvalid(err) && strings.Contains(err.Error(), "Forbidden: updates to statefulset spec for fields other than"):
		return fmt.Errorf("%w (a StatefulSet's volume claim templates and selector cannot change: delete it keeping its pods and claims, `kubectl delete statefulset NAME --cascade=orphan`, then up again)", err)
	case apierrors.IsForbidden(err):
		return fmt.Errorf("%w (the kubeconfig's user may not do this: check its RBAC permissions in the namespace)", err)
	}
	return err
}

// removeAndWait deletes an object and waits until it is gone (a Job is
// recreated under the same name).
func (t *Target) removeAndWait(ctx context.Context, r ref, deadline time.Time) error {
	if err := t.remove(ctx, r); err != nil {
		return err
	}
	for {
		u, err := t.get(ctx, r)
		if err != nil {
			return err
		}
		if u == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s is still being deleted", r.Address())
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}

// pollInterval is how often readiness is polled.
const pollInterval = time.Second

func sleep(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

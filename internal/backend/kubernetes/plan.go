package kubernetes

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/aipairpro/orchestrator/internal/plan"
)

// PlanOptions configure Plan.
type PlanOptions struct {
	// PruneVolumes plans deleting the claims no longer rendered, as
	// UpOptions.PruneVolumes does; by default they are planned as kept.
	PruneVolumes bool
}

// Plan compares the rendered objects with the cluster the way Up would
// change it: each object goes through a server-side dry-run apply (the
// API server's defaulting, admission and merge, with conflicts forced as
// Up forces them), and the result is compared with the live object,
// leaving out what the server sets (managedFields, resourceVersion,
// generation, status). Objects of the stack's ApplySet that are no longer
// rendered are planned for deletion (claims: kept, unless PruneVolumes).
// A difference in an object whose manifest is the one the last Up applied
// (TargetOptions.StateDir) was made by hand: drift. Plan changes nothing.
//
// Addresses are kubernetes.<apiVersion>/<Kind>/<namespace>/<name>
// (kubernetes.apps/v1/StatefulSet/acme/postgres), without the namespace
// for the Namespace itself. A change the API server refuses (a
// StatefulSet's volume claim templates, another ApplySet's object) is
// Refused, with the fix.
func (t *Target) Plan(ctx context.Context, arts *Artifacts, opts PlanOptions) (*plan.Plan, error) {
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
	record, err := t.readRecord()
	if err != nil {
		return nil, err
	}
	kinds := kindsOf(ds)
	for gk := range parent.groupKinds {
		kinds[gk] = true
	}
	live, err := t.liveObjects(ctx, listKinds(kinds, parent))
	if err != nil {
		return nil, err
	}
	ns := live[ref{gk: schema.GroupKind{Kind: "Namespace"}, name: t.ns}.key()]
	nsReady := ns != nil && ns.GetDeletionTimestamp() == nil
	changes := make([]plan.Change, len(ds))
	idx := make([]int, len(ds))
	for i := range idx {
		idx[i] = i
	}
	err = parallel(ctx, idx, concurrency, func(ctx context.Context, i int) error {
		c, err := t.planObject(ctx, ds[i], live[ds[i].ref.key()], record, nsReady)
		changes[i] = c
		return err
	})
	if err != nil {
		return nil, err
	}
	pl := plan.New(t.stack, t.Describe())
	for _, c := range changes {
		pl.Add(c)
	}
	for _, d := range t.pruneDecisions(pruneInput{desired: ds, live: live, volumes: opts.PruneVolumes}) {
		r := refOf(d.obj)
		c := plan.Change{Address: r.Address(), Type: typeOf(r), Name: r.name, Actions: []plan.Action{plan.Delete}, Reason: d.reason, Before: facts(d.obj)}
		if d.keep {
			c.Actions = []plan.Action{plan.NoOp}
		}
		pl.Add(c)
	}
	t.warnings.take() // a dry run's warnings are Up's to report
	return pl, nil
}

// typeOf is a change's type: apiVersion/Kind.
func typeOf(r ref) string { return r.apiVersion() + "/" + r.gk.Kind }

func (t *Target) planObject(ctx context.Context, d *desired, l *unstructured.Unstructured, record map[string]string, nsReady bool) (plan.Change, error) {
	addr := d.ref.Address()
	c := plan.Change{Address: addr, Type: typeOf(d.ref), Name: d.ref.name, Actions: []plan.Action{plan.NoOp}, After: facts(d.obj)}
	last, recorded := record[addr]
	byHand := recorded && last == d.digest
	if l == nil {
		c.Actions, c.Reason = []plan.Action{plan.Create}, "missing: not created yet"
		if recorded {
			c.Reason, c.Drift = "missing: deleted by hand since the last up", true
		}
		if nsReady || !d.res.namespaced {
			// The API server checks what it would create.
			if _, _, err := t.serverApply(ctx, d.ref, d.res, d.body, applyOpts{dryRun: true, force: true}); err != nil {
				if !apierrors.IsInvalid(err) && !apierrors.IsForbidden(err) && !apierrors.IsBadRequest(err) {
					return c, fmt.Errorf("dry run %s: %w", addr, err)
				}
				c.Refused, c.Fix = "the API server refuses it: "+err.Error(), explainAPIError(err).Error()
			}
		}
		return c, nil
	}
	c.Before = facts(l)
	if id := l.GetLabels()[LabelApplySetPartOf]; id != "" && id != t.set.id {
		c.Actions = []plan.Action{plan.Update}
		c.Reason = "exists and belongs to another ApplySet"
		c.Refused = fmt.Sprintf("%s has %s=%s: another tool's or stack's object of the same name", addr, LabelApplySetPartOf, id)
		c.Fix = "give the stack another namespace, or delete that object if it is not needed"
		return c, nil
	}
	if d.kind() == "Job" {
		if failed, _ := jobFinished(l); failed != "" {
			c.Actions, c.Reason = []plan.Action{plan.Update}, "failed ("+failed+"): up deletes it and runs it again"
			return c, nil
		}
	}
	out, _, err := t.serverApply(ctx, d.ref, d.res, d.body, applyOpts{dryRun: true, force: true})
	switch {
	case err != nil && d.kind() == "Job" && isImmutable(err):
		c.Actions = []plan.Action{plan.Update}
		c.Reason = "pod template changed, and a Job's cannot: up deletes it and runs it again"
		c.Drift = byHand
		return c, nil
	case err != nil && (apierrors.IsInvalid(err) || apierrors.IsForbidden(err) || apierrors.IsBadRequest(err)):
		c.Actions = []plan.Action{plan.Update}
		c.Reason = "changed"
		c.Refused = "the API server refuses the change: " + err.Error()
		c.Fix = explainAPIError(err).Error()
		return c, nil
	case err != nil:
		return c, fmt.Errorf("dry run %s: %w", addr, err)
	}
	paths := diffPaths(normalize(l), normalize(out))
	if len(paths) == 0 {
		return c, nil
	}
	c.Actions = []plan.Action{plan.Update}
	switch {
	case l.GetLabels()[LabelApplySetPartOf] == "":
		c.Reason = "exists but was not applied by orchestrator: up takes it over (" + summary(paths) + ")"
	case byHand:
		c.Reason, c.Drift = "changed by hand since the last up: "+summary(paths), true
	default:
		c.Reason = "changed: " + summary(paths)
	}
	return c, nil
}

// facts are the few values a change shows: images and replicas of a
// workload (never a Secret's data).
func facts(u *unstructured.Unstructured) map[string]string {
	var containers []any
	switch u.GetKind() {
	case "Deployment", "StatefulSet", "Job":
		containers, _, _ = unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
	default:
		return nil
	}
	out := map[string]string{}
	var images []string
	for _, c := range containers {
		if m, ok := c.(map[string]any); ok {
			if img, ok := m["image"].(string); ok {
				images = append(images, img)
			}
		}
	}
	out["image"] = strings.Join(images, ",")
	if r, found, _ := unstructured.NestedInt64(u.Object, "spec", "replicas"); found {
		out["replicas"] = strconv.FormatInt(r, 10)
	}
	return out
}

// normalize drops what the API server sets and Up does not: a dry run's
// answer and the live object then differ only where apply would change
// the object.
func normalize(u *unstructured.Unstructured) map[string]any {
	m := u.DeepCopy().Object
	delete(m, "status")
	if md, ok := m["metadata"].(map[string]any); ok {
		for _, k := range []string{"managedFields", "resourceVersion", "generation"} {
			delete(md, k)
		}
	}
	return m
}

// diffPaths lists the paths where a and b differ; list items with a name
// are addressed by it (spec.template.spec.containers[app].env[LOG_LEVEL]).
func diffPaths(a, b map[string]any) []string {
	var out []string
	diffValue(a, b, "", &out)
	sort.Strings(out)
	return out
}

func diffValue(a, b any, path string, out *[]string) {
	switch av := a.(type) {
	case map[string]any:
		bv, ok := b.(map[string]any)
		if !ok {
			*out = append(*out, orRoot(path))
			return
		}
		keys := map[string]bool{}
		for k := range av {
			keys[k] = true
		}
		for k := range bv {
			keys[k] = true
		}
		for _, k := range sortedSet(keys) {
			sub := k
			if path != "" {
				sub = path + "." + k
			}
			x, okA := av[k]
			y, okB := bv[k]
			if okA != okB {
				*out = append(*out, sub)
				continue
			}
			diffValue(x, y, sub, out)
		}
	case []any:
		bv, ok := b.([]any)
		if !ok {
			*out = append(*out, orRoot(path))
			return
		}
		if na, nb := byName(av), byName(bv); na != nil && nb != nil {
			keys := map[string]bool{}
			for k := range na {
				keys[k] = true
			}
			for k := range nb {
				keys[k] = true
			}
			for _, k := range sortedSet(keys) {
				x, okA := na[k]
				y, okB := nb[k]
				sub := path + "[" + k + "]"
				if okA != okB {
					*out = append(*out, sub)
					continue
				}
				diffValue(x, y, sub, out)
			}
			return
		}
		if len(av) != len(bv) {
			*out = append(*out, orRoot(path))
			return
		}
		for i := range av {
			diffValue(av[i], bv[i], fmt.Sprintf("%s[%d]", path, i), out)
		}
	default:
		if !reflect.DeepEqual(a, b) {
			*out = append(*out, orRoot(path))
		}
	}
}

func orRoot(path string) string {
	if path == "" {
		return "(the whole object)"
	}
	return path
}

// byName indexes a list of objects by their distinct "name" fields; nil
// when it is not such a list.
func byName(l []any) map[string]any {
	if len(l) == 0 {
		return nil
	}
	out := map[string]any{}
	for _, e := range l {
		m, ok := e.(map[string]any)
		if !ok {
			return nil
		}
		name, ok := m["name"].(string)
		if !ok || name == "" {
			return nil
		}
		if _, dup := out[name]; dup {
			return nil
		}
		out[name] = e
	}
	return out
}

// summary shows the first paths of a difference.
func summary(paths []string) string {
	const show = 4
	if len(paths) <= show {
		return strings.Join(paths, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(paths[:show], ", "), len(paths)-show)
}

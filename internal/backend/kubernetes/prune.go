package kubernetes

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

var claimKind = schema.GroupKind{Kind: "PersistentVolumeClaim"}

// pruneInput is what prune compares.
type pruneInput struct {
	desired []*desired
	// live holds the live objects of the set's kinds and every claim in
	// the namespace (liveObjects with claimKind).
	live map[string]*unstructured.Unstructured
	// volumes: delete claims too.
	volumes bool
	ev      *events
}

// pruneDecision is one object prune deletes or keeps.
type pruneDecision struct {
	obj  *unstructured.Unstructured
	keep bool
	// member: the object is in the ApplySet (a kept member claim leaves it).
	member bool
	reason string
}

// pruneDecisions are the ApplySet's members that are no longer rendered:
// deleted, except claims, which are kept unless volumes is set. The
// claims a pruned StatefulSet made from its templates (kept when it goes:
// its retention policy says Retain) are listed too. The stack's namespace
// is never pruned: deleting it would delete every claim in it.
func (t *Target) pruneDecisions(in pruneInput) []pruneDecision {
	want := map[string]bool{}
	for _, d := range in.desired {
		want[d.ref.key()] = true
	}
	var out []pruneDecision
	gone := map[string]bool{} // StatefulSets pruned, by name
	for _, key := range sortedKeys(in.live) {
		l := in.live[key]
		if want[key] || l.GetLabels()[LabelApplySetPartOf] != t.set.id || l.GetKind() == "Namespace" {
			continue
		}
		d := pruneDecision{obj: l, member: true, reason: "not rendered any more: pruned from the stack's ApplySet"}
		if refOf(l).gk == claimKind {
			d.keep = !in.volumes
			d.reason = "not rendered any more; its data is kept (down --volumes deletes it)"
			if in.volumes {
				d.reason = "not rendered any more: deleted with its data, as asked"
			}
		}
		if l.GetKind() == "StatefulSet" {
			gone[l.GetName()] = true
		}
		out = append(out, d)
	}
	for _, key := range sortedKeys(in.live) {
		l := in.live[key]
		lb := l.GetLabels()
		if refOf(l).gk != claimKind || want[key] || lb[LabelApplySetPartOf] == t.set.id ||
			lb[LabelInstance] != t.stack || lb[LabelManagedBy] != ManagedBy || !gone[lb[LabelName]] {
			continue
		}
		d := pruneDecision{obj: l, keep: !in.volumes, reason: fmt.Sprintf("claim of StatefulSet %s, which is pruned; its data is kept (down --volumes deletes it)", lb[LabelName])}
		if in.volumes {
			d.reason = fmt.Sprintf("claim of StatefulSet %s, which is pruned: deleted with its data, as asked", lb[LabelName])
		}
		out = append(out, d)
	}
	return out
}

// pruneResult is what prune did, by address.
type pruneResult struct {
	pruned, kept []string
}

// prune deletes the set's members that are no longer rendered, and lets
// the kept claims leave the set (AnnotationKept says why they stay).
func (t *Target) prune(ctx context.Context, in pruneInput) (pruneResult, error) {
	var res pruneResult
	var mu sync.Mutex
	err := parallel(ctx, t.pruneDecisions(in), concurrency, func(ctx context.Context, d pruneDecision) error {
		r := refOf(d.obj)
		addr := r.Address()
		if d.keep {
			if d.member {
				if err := t.release(ctx, r); err != nil {
					return err
				}
			}
			mu.Lock()
			res.kept = append(res.kept, addr)
			mu.Unlock()
			in.ev.emit(addr, "kept", d.reason)
			return nil
		}
		if err := t.remove(ctx, r); err != nil {
			return err
		}
		mu.Lock()
		res.pruned = append(res.pruned, addr)
		mu.Unlock()
		in.ev.emit(addr, "pruned", "")
		return nil
	})
	sort.Strings(res.pruned)
	sort.Strings(res.kept)
	return res, err
}

// release takes a kept claim out of the ApplySet, so that no prune (ours
// or kubectl's) deletes it later, and says why it is there.
func (t *Target) release(ctx context.Context, r ref) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"labels":      map[string]any{LabelApplySetPartOf: nil},
		"annotations": map[string]any{AnnotationKept: "its service is no longer rendered; the data stays until `orchestrator down --volumes` or kubectl delete"},
	}})
	if err != nil {
		return err
	}
	res, err := t.resourceFor(r.gk)
	if err != nil {
		return err
	}
	if _, err := t.client(res, r.namespace).Patch(ctx, r.name, types.MergePatchType, patch, patchOptions()); err != nil {
		return fmt.Errorf("keep %s out of the ApplySet: %w", r.Address(), err)
	}
	return nil
}

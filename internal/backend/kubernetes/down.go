package kubernetes

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// DefaultDownTimeout bounds Down's wait when DownOptions.Timeout is zero.
const DefaultDownTimeout = 2 * time.Minute

// DownOptions configure Down.
type DownOptions struct {
	// Volumes also deletes the stack's PersistentVolumeClaims (their
	// data), the ApplySet's parent and the namespace if orchestrator
	// created it. The caller asks for confirmation first.
	Volumes bool
	// Timeout bounds the wait until the stack's pods (and with Volumes the
	// namespace) are gone. Default DefaultDownTimeout.
	Timeout time.Duration
	// OnEvent receives progress; nil discards it.
	OnEvent func(Event)
}

// DownResult is what Down did.
type DownResult struct {
	// Deleted are the addresses of the deleted objects.
	Deleted []string `json:"deleted"`
	// Kept are the claims and the namespace that stay (without Volumes).
	Kept []string `json:"kept,omitempty"`
}

// Down deletes the stack's objects, the members of its ApplySet, in the
// reverse of the apply order, and waits until its pods are gone. The
// namespace and the claims (the data) stay, and so does the ApplySet's
// parent, which then lists only them, unless Volumes: then the claims of
// the stack (its StatefulSets' too) go, the parent goes, and the namespace
// goes if orchestrator created it. The record of the last apply is
// removed, so that a plan after down reports no drift.
func (t *Target) Down(ctx context.Context, opts DownOptions) (*DownResult, error) {
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultDownTimeout
	}
	deadline := time.Now().Add(timeout)
	ev := &events{fn: opts.OnEvent}
	parent, err := t.readParent(ctx)
	if err != nil {
		return nil, err
	}
	kinds := map[schema.GroupKind]bool{}
	for gk := range knownKinds {
		kinds[gk] = true
	}
	for gk := range parent.groupKinds {
		kinds[gk] = true
	}
	live, err := t.members(ctx, kinds)
	if err != nil {
		return nil, err
	}
	claims, err := t.list(ctx, claimKind, LabelInstance+"="+t.stack+","+LabelManagedBy+"="+ManagedBy)
	if err != nil {
		return nil, err
	}
	for i := range claims {
		live[refOf(&claims[i]).key()] = &claims[i]
	}
	res := &DownResult{Deleted: []string{}}
	var mu sync.Mutex
	byWave := map[int][]*unstructured.Unstructured{}
	var namespace *unstructured.Unstructured
	remaining := map[schema.GroupKind]bool{}
	for _, key := range sortedKeys(live) {
		l := live[key]
		r := refOf(l)
		switch {
		case r.gk.Kind == "Namespace" && r.gk.Group == "":
			namespace = l
			if !opts.Volumes || !parent.namespaceCreated {
				res.Kept = append(res.Kept, r.Address())
				remaining[r.gk] = true
			}
			continue
		case r.gk == claimKind && !opts.Volumes:
			res.Kept = append(res.Kept, r.Address())
			if l.GetLabels()[LabelApplySetPartOf] == t.set.id {
				remaining[r.gk] = true
			}
			continue
		}
		wave, ok := waveOf[r.gk.Kind]
		if !ok {
			wave = waveTail
		}
		byWave[wave] = append(byWave[wave], l)
	}
	for wave := waveTail; wave > waveNamespace; wave-- {
		err := parallel(ctx, byWave[wave], concurrency, func(ctx context.Context, l *unstructured.Unstructured) error {
			r := refOf(l)
			if err := t.remove(ctx, r); err != nil {
				return err
			}
			mu.Lock()
			res.Deleted = append(res.Deleted, r.Address())
			mu.Unlock()
			ev.emit(r.Address(), "deleted", "")
			return nil
		})
		if err != nil {
			return res, err
		}
	}
	if err := t.removeRecord(); err != nil {
		return res, err
	}
	if parent.exists {
		if opts.Volumes {
			if err := t.remove(ctx, t.set.ref()); err != nil {
				return res, err
			}
		} else if err := t.writeParent(ctx, remaining, parent.namespaceCreated); err != nil {
			return res, err
		}
	}
	if opts.Volumes && parent.namespaceCreated && namespace != nil {
		r := refOf(namespace)
		if err := t.remove(ctx, r); err != nil {
			return res, err
		}
		res.Deleted = append(res.Deleted, r.Address())
		ev.emit(r.Address(), "deleted", "")
		if err := t.waitGone(ctx, r, deadline); err != nil {
			return res, err
		}
	} else if err := t.waitPodsGone(ctx, deadline); err != nil {
		return res, err
	}
	sort.Strings(res.Deleted)
	return res, nil
}

// waitGone polls until an object no longer exists.
func (t *Target) waitGone(ctx context.Context, r ref, deadline time.Time) error {
	for {
		u, err := t.get(ctx, r)
		if err != nil {
			return err
		}
		if u == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s is still being deleted (kubectl get %s %s -o yaml shows what holds it)", r.Address(), strings.ToLower(r.gk.Kind), r.name)
		}
		if err := sleep(ctx, pollInterval); err != nil {
			return err
		}
	}
}

// waitPodsGone polls until no pod of the stack is left.
func (t *Target) waitPodsGone(ctx context.Context, deadline time.Time) error {
	sel := LabelInstance + "=" + t.stack + "," + LabelManagedBy + "=" + ManagedBy
	for {
		pods, err := t.core.CoreV1().Pods(t.ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			return err
		}
		if len(pods.Items) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			var names []string
			for _, p := range pods.Items {
				names = append(names, p.Name)
			}
			return fmt.Errorf("pods still terminating: %s", strings.Join(names, ", "))
		}
		if err := sleep(ctx, pollInterval); err != nil {
			return err
		}
	}
}

// VolumesOptions configure Volumes (none yet).
type VolumesOptions struct{}

// Volumes lists the stack's PersistentVolumeClaims (its StatefulSets' and
// its own), which down --volumes deletes: for the confirmation.
func (t *Target) Volumes(ctx context.Context, _ VolumesOptions) ([]string, error) {
	claims, err := t.list(ctx, claimKind, LabelInstance+"="+t.stack+","+LabelManagedBy+"="+ManagedBy)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(claims))
	for _, c := range claims {
		out = append(out, c.GetName())
	}
	sort.Strings(out)
	return out, nil
}

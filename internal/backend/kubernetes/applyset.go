package kubernetes

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The ApplySet labels and annotations (KEP-3659), as `kubectl apply
// --prune --applyset` reads and writes them.
const (
	// LabelApplySetID marks the parent; its value is the ApplySet's ID.
	LabelApplySetID = "applyset.kubernetes.io/id"
	// LabelApplySetPartOf marks each member; its value is the ID.
	LabelApplySetPartOf = "applyset.kubernetes.io/part-of"
	// AnnotationApplySetTooling names the tool that manages the set;
	// kubectl refuses to prune a set another tool manages.
	AnnotationApplySetTooling = "applyset.kubernetes.io/tooling"
	// AnnotationApplySetGroupKinds lists the kinds of the members
	// (Kind.group, sorted, comma-separated), so that pruning lists only
	// those.
	AnnotationApplySetGroupKinds = "applyset.kubernetes.io/contains-group-kinds"
	// ApplySetTooling is the tooling annotation's value.
	ApplySetTooling = "orchestrator/v1"
	// AnnotationNamespaceCreated on the parent records that orchestrator
	// created the namespace, so down --volumes deletes it (and never a
	// namespace it only joined).
	AnnotationNamespaceCreated = "dev.orchestrator/namespace-created"
	// AnnotationKept is set on a PersistentVolumeClaim that left the
	// ApplySet because its service is no longer rendered: its data is
	// kept until down --volumes, or deleting it by hand.
	AnnotationKept = "dev.orchestrator/kept"
)

// applySet is the stack's ApplySet: the parent is a Secret in the stack's
// namespace (one of the parent kinds kubectl accepts without a CRD).
type applySet struct {
	parent    string
	namespace string
	id        string
}

func newApplySet(stack, namespace string) applySet {
	parent := "orchestrator-applyset-" + stack
	return applySet{parent: parent, namespace: namespace, id: applySetID(parent, namespace, "Secret", "")}
}

// applySetID is the ID of an ApplySet from its parent, as the KEP and
// kubectl define it: "applyset-" + base64url(sha256(name.namespace.kind.group))
// without padding + "-v1".
func applySetID(name, namespace, kind, group string) string {
	sum := sha256.Sum256([]byte(strings.Join([]string{name, namespace, kind, group}, ".")))
	return "applyset-" + base64.RawURLEncoding.EncodeToString(sum[:]) + "-v1"
}

func (s applySet) ref() ref {
	return ref{gk: schema.GroupKind{Kind: "Secret"}, version: "v1", namespace: s.namespace, name: s.parent}
}

// memberSelector selects the set's members.
func (s applySet) memberSelector() string { return LabelApplySetPartOf + "=" + s.id }

// parentState is what the live parent says.
type parentState struct {
	exists           bool
	groupKinds       map[schema.GroupKind]bool
	namespaceCreated bool
}

// readParent reads the live parent. A parent another tool manages, or
// whose ID is not ours, is refused: its members are not ours to prune.
func (t *Target) readParent(ctx context.Context) (parentState, error) {
	st := parentState{groupKinds: map[schema.GroupKind]bool{}}
	u, err := t.get(ctx, t.set.ref())
	if err != nil {
		return st, fmt.Errorf("read the ApplySet parent: %w", err)
	}
	if u == nil {
		return st, nil
	}
	st.exists = true
	ann := u.GetAnnotations()
	tool := ann[AnnotationApplySetTooling]
	if name, _, _ := strings.Cut(tool, "/"); name != strings.SplitN(ApplySetTooling, "/", 2)[0] {
		return st, fmt.Errorf("secret %s/%s, the stack's ApplySet parent, is managed by %q, not orchestrator: rename or remove it, or give the stack another namespace", t.ns, t.set.parent, tool)
	}
	if id := u.GetLabels()[LabelApplySetID]; id != t.set.id {
		return st, fmt.Errorf("secret %s/%s, the stack's ApplySet parent, has %s=%q, want %q: remove the label's wrong value", t.ns, t.set.parent, LabelApplySetID, id, t.set.id)
	}
	for _, gk := range parseGroupKinds(ann[AnnotationApplySetGroupKinds]) {
		st.groupKinds[gk] = true
	}
	st.namespaceCreated = ann[AnnotationNamespaceCreated] == "true"
	return st, nil
}

// writeParent applies the parent with the kinds its members may have.
func (t *Target) writeParent(ctx context.Context, kinds map[schema.GroupKind]bool, namespaceCreated bool) error {
	ann := map[string]any{
		AnnotationApplySetTooling:    ApplySetTooling,
		AnnotationApplySetGroupKinds: formatGroupKinds(kinds),
	}
	if namespaceCreated {
		ann[AnnotationNamespaceCreated] = "true"
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1",
		"kind":       "Secret",
		"metadata": map[string]any{
			"name":      t.set.parent,
			"namespace": t.ns,
			"labels": map[string]any{
				LabelApplySetID: t.set.id,
				LabelInstance:   t.stack,
				LabelManagedBy:  ManagedBy,
			},
			"annotations": ann,
		},
		"type": "Opaque",
	}}
	body, err := json.Marshal(u.Object)
	if err != nil {
		return err
	}
	r := t.set.ref()
	if _, _, err := t.serverApply(ctx, r, knownKinds[r.gk], body, applyOpts{force: true}); err != nil {
		return fmt.Errorf("update the ApplySet parent %s: %w", r.Address(), err)
	}
	return nil
}

// parseGroupKinds reads contains-group-kinds ("ConfigMap,Deployment.apps").
func parseGroupKinds(s string) []schema.GroupKind {
	var out []schema.GroupKind
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, schema.ParseGroupKind(part))
		}
	}
	return out
}

// formatGroupKinds writes contains-group-kinds as kubectl does: each
// GroupKind's String(), sorted.
func formatGroupKinds(kinds map[schema.GroupKind]bool) string {
	var out []string
	for gk := range kinds {
		out = append(out, gk.String())
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

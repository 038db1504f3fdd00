package kubernetes

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

// waitInput bounds one wait.
type waitInput struct {
	deadline time.Time
	start    time.Time
	timeout  time.Duration
	ev       *events
}

// notReady is an object that is not ready, with kstatus' verdict.
type notReady struct {
	ref     ref
	obj     *unstructured.Unstructured // nil: not found
	status  string
	message string
}

// waited are the kinds whose readiness Up waits for; the others are ready
// once the API server has them.
var waited = map[string]bool{"Deployment": true, "StatefulSet": true, "Job": true, "PersistentVolumeClaim": true}

// waitReady polls the stack's workloads and claims until kstatus calls each
// Current (a Job: complete; the autoscaler's Deployment: scaled to at least
// its minimum), one fails, or the deadline passes.
func (t *Target) waitReady(ctx context.Context, ds []*desired, in waitInput) error {
	var watch []*desired
	for _, d := range ds {
		if waited[d.kind()] {
			watch = append(watch, d)
		}
	}
	if len(watch) == 0 {
		return nil
	}
	minReplicas := autoscaled(ds)
	kinds := kindsOf(watch)
	seen := map[string]bool{}
	for {
		live, err := t.members(ctx, kinds)
		if err != nil {
			return err
		}
		var failed, pending []notReady
		for _, d := range watch {
			l := live[d.ref.key()]
			if l == nil {
				pending = append(pending, notReady{ref: d.ref, status: "NotFound", message: "not found: deleted since it was applied"})
				continue
			}
			status, msg := readiness(l, minReplicas)
			switch status {
			case kstatus.CurrentStatus.String():
				if !seen[d.ref.key()] {
					seen[d.ref.key()] = true
					in.ev.emit(d.ref.Address(), "ready", msg)
				}
			case kstatus.FailedStatus.String():
				failed = append(failed, notReady{ref: d.ref, obj: l, status: status, message: msg})
			default:
				pending = append(pending, notReady{ref: d.ref, obj: l, status: status, message: msg})
			}
		}
		if len(failed) > 0 || len(pending) > 0 && time.Now().After(in.deadline) {
			return &WaitError{Timeout: in.timeout, Elapsed: time.Since(in.start), Failures: t.explain(ctx, append(failed, pending...))}
		}
		if len(pending) == 0 {
			return nil
		}
		if err := sleep(ctx, pollInterval); err != nil {
			return err
		}
	}
}

// members lists the set's members of the given kinds, by key.
func (t *Target) members(ctx context.Context, kinds map[schema.GroupKind]bool) (map[string]*unstructured.Unstructured, error) {
	var gks []schema.GroupKind
	for gk := range kinds {
		gks = append(gks, gk)
	}
	var mu sync.Mutex
	out := map[string]*unstructured.Unstructured{}
	err := parallel(ctx, gks, concurrency, func(ctx context.Context, gk schema.GroupKind) error {
		items, err := t.list(ctx, gk, t.set.memberSelector())
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		for i := range items {
			out[refOf(&items[i]).key()] = &items[i]
		}
		return nil
	})
	return out, err
}

// autoscaled maps each Deployment an autoscaler of the set scales to the
// autoscaler's minimum: the manifest leaves its replica count to the
// autoscaler, so right after apply it runs one pod until the autoscaler
// catches up.
func autoscaled(ds []*desired) map[string]int64 {
	out := map[string]int64{}
	for _, d := range ds {
		if d.kind() != "HorizontalPodAutoscaler" {
			continue
		}
		kind, _, _ := unstructured.NestedString(d.obj.Object, "spec", "scaleTargetRef", "kind")
		name, _, _ := unstructured.NestedString(d.obj.Object, "spec", "scaleTargetRef", "name")
		min, found, _ := unstructured.NestedInt64(d.obj.Object, "spec", "minReplicas")
		if !found {
			min = 1
		}
		if kind == "Deployment" {
			out[name] = min
		}
	}
	return out
}

// readiness is kstatus' verdict on a live object, stricter in two places:
// a Job is ready when it has completed (kstatus calls a running Job
// current), and a Deployment an autoscaler scales when it runs at least
// the autoscaler's minimum.
func readiness(u *unstructured.Unstructured, minReplicas map[string]int64) (status, message string) {
	res, err := kstatus.Compute(u)
	if err != nil {
		return kstatus.UnknownStatus.String(), err.Error()
	}
	status, message = res.Status.String(), res.Message
	switch u.GetKind() {
	case "Job":
		failed, complete := jobFinished(u)
		if failed != "" {
			return kstatus.FailedStatus.String(), failed
		}
		if !complete && status == kstatus.CurrentStatus.String() {
			return kstatus.InProgressStatus.String(), "the Job has not completed: " + message
		}
	case "Deployment":
		if min, ok := minReplicas[u.GetName()]; ok && status == kstatus.CurrentStatus.String() {
			replicas, found, _ := unstructured.NestedInt64(u.Object, "spec", "replicas")
			if !found {
				replicas = 1
			}
			if replicas < min {
				return kstatus.InProgressStatus.String(), fmt.Sprintf("%d replicas, waiting for its autoscaler to scale it to its minimum, %d", replicas, min)
			}
		}
	}
	return status, message
}

// WaitError says which objects did not get ready, and why.
type WaitError struct {
	// Timeout is Up's timeout; Elapsed how long it ran.
	Timeout, Elapsed time.Duration
	Failures         []Failure
	// NotApplied are workloads that were not applied because a Job they
	// depend on did not complete.
	NotApplied []string
}

// Failure explains one object that is not ready.
type Failure struct {
	Address string `json:"address"`
	// Status is kstatus' status: InProgress, Failed, NotFound, ...
	Status  string `json:"status"`
	Message string `json:"message"`
	// Conditions are the object's conditions ("Available=False
	// MinimumReplicasUnavailable: ...").
	Conditions []string `json:"conditions,omitempty"`
	// Events are recent events of the object and of what its controller
	// made for it (a Deployment's ReplicaSets).
	Events []string     `json:"events,omitempty"`
	Pods   []PodFailure `json:"pods,omitempty"`
}

// PodFailure is one of a failing object's pods that is not ready.
type PodFailure struct {
	Name  string `json:"name"`
	Phase string `json:"phase"`
	// Conditions are the pod's conditions that are not true
	// ("PodScheduled=False Unschedulable: ...").
	Conditions []string         `json:"conditions,omitempty"`
	Containers []ContainerState `json:"containers"`
	Events     []string         `json:"events,omitempty"`
	// LogsOf names the container whose log tail Logs holds (its previous
	// run's when it is waiting to be restarted).
	LogsOf string   `json:"logs_of,omitempty"`
	Logs   []string `json:"logs,omitempty"`
}

// ContainerState is one container's state in a pod.
type ContainerState struct {
	Name string `json:"name"`
	Init bool   `json:"init,omitempty"`
	// State is "running", "waiting: CrashLoopBackOff: ..." or
	// "terminated: Error, exit code 1".
	State     string `json:"state"`
	Ready     bool   `json:"ready"`
	Restarts  int32  `json:"restarts"`
	LastState string `json:"last_state,omitempty"`
}

func (e *WaitError) Error() string {
	var b strings.Builder
	if e.Elapsed >= e.Timeout {
		fmt.Fprintf(&b, "not ready within the timeout (%s):", e.Timeout)
	} else {
		fmt.Fprintf(&b, "failed after %s:", e.Elapsed.Round(time.Second))
	}
	for _, f := range e.Failures {
		fmt.Fprintf(&b, "\n  %s: %s: %s", f.Address, f.Status, f.Message)
		for _, c := range f.Conditions {
			fmt.Fprintf(&b, "\n    condition %s", c)
		}
		for _, ev := range f.Events {
			fmt.Fprintf(&b, "\n    event %s", ev)
		}
		for _, p := range f.Pods {
			fmt.Fprintf(&b, "\n    pod %s: %s", p.Name, p.Phase)
			for _, c := range p.Conditions {
				fmt.Fprintf(&b, "\n      condition %s", c)
			}
			for _, c := range p.Containers {
				kind := "container"
				if c.Init {
					kind = "init container"
				}
				ready := "not ready"
				if c.Ready {
					ready = "ready"
				}
				fmt.Fprintf(&b, "\n      %s %s: %s, %s, %d restarts", kind, c.Name, c.State, ready, c.Restarts)
				if c.LastState != "" {
					fmt.Fprintf(&b, " (last: %s)", c.LastState)
				}
			}
			for _, ev := range p.Events {
				fmt.Fprintf(&b, "\n      event %s", ev)
			}
			if p.LogsOf != "" {
				fmt.Fprintf(&b, "\n      log of %s (last %d lines):", p.LogsOf, len(p.Logs))
				for _, l := range p.Logs {
					fmt.Fprintf(&b, "\n        | %s", l)
				}
			}
		}
	}
	if len(e.NotApplied) > 0 {
		fmt.Fprintf(&b, "\n  not applied, waiting for the Jobs above: %s", strings.Join(e.NotApplied, ", "))
	}
	return b.String()
}

// explainBudget bounds the requests that explain a failure, which may run
// after the deadline.
const explainBudget = 20 * time.Second

// logLines is how many lines of a failing container's log are shown.
const logLines = 15

// explain collects, for each object, its conditions, events, and its pods
// that are not ready with their container states, events and log tails.
// What cannot be read is left out: the explanation must not hide the
// failure.
func (t *Target) explain(ctx context.Context, nr []notReady) []Failure {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), explainBudget)
	defer cancel()
	var allEvents []corev1.Event
	if l, err := t.core.CoreV1().Events(t.ns).List(ctx, metav1.ListOptions{}); err == nil {
		allEvents = l.Items
	}
	var pods []corev1.Pod
	if l, err := t.core.CoreV1().Pods(t.ns).List(ctx, metav1.ListOptions{}); err == nil {
		pods = l.Items
	}
	var out []Failure
	for _, n := range nr {
		f := Failure{Address: n.ref.Address(), Status: n.status, Message: n.message}
		if n.obj == nil {
			out = append(out, f)
			continue
		}
		f.Conditions = conditionsOf(n.obj, false)
		involved := map[string]bool{n.ref.gk.Kind + "/" + n.ref.name: true}
		if n.ref.gk.Kind == "Deployment" {
			if l, err := t.core.AppsV1().ReplicaSets(t.ns).List(ctx, metav1.ListOptions{}); err == nil {
				for _, rs := range l.Items {
					if ownedBy(rs.OwnerReferences, n.obj.GetUID()) {
						involved["ReplicaSet/"+rs.Name] = true
					}
				}
			}
		}
		f.Events = eventsFor(allEvents, involved)
		// Pods by the object's selector, or by owner: a Job read back
		// before the API server defaulted its selector has none, and its
		// pods are still its own.
		sel := selectorOf(n.obj)
		if sel == nil {
			sel = labels.Nothing()
		}
		failing := failingPods(pods, sel, n.obj.GetUID())
		// The namespace's list may predate a pod made since, or a Job's pod
		// may not be listed yet while the Job counts it active: ask again,
		// briefly, by selector and by owner.
		for try := 0; len(failing) == 0 && try < 4; try++ {
			if l, err := t.core.CoreV1().Pods(t.ns).List(ctx, metav1.ListOptions{}); err == nil {
				failing = failingPods(l.Items, sel, n.obj.GetUID())
			}
			if len(failing) > 0 || n.ref.gk.Kind != "Job" || sleep(ctx, 500*time.Millisecond) != nil {
				break
			}
		}
		sort.Slice(failing, func(i, j int) bool { return failing[j].CreationTimestamp.Before(&failing[i].CreationTimestamp) })
		for i := range failing {
			if i == 2 {
				break
			}
			f.Pods = append(f.Pods, t.podFailure(ctx, &failing[i], allEvents))
		}
		out = append(out, f)
	}
	return out
}

// failingPods are the pods of a selector, or owned by owner, that are not
// ready.
func failingPods(pods []corev1.Pod, sel labels.Selector, owner types.UID) []corev1.Pod {
	var out []corev1.Pod
	for _, p := range pods {
		if (sel.Matches(labels.Set(p.Labels)) || ownedBy(p.OwnerReferences, owner)) && !podOK(&p) {
			out = append(out, p)
		}
	}
	return out
}

// podOK: ready, or a Job's pod that succeeded.
func podOK(p *corev1.Pod) bool {
	if p.Status.Phase == corev1.PodSucceeded {
		return true
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (t *Target) podFailure(ctx context.Context, p *corev1.Pod, events []corev1.Event) PodFailure {
	pf := PodFailure{Name: p.Name, Phase: string(p.Status.Phase)}
	if p.Status.Reason != "" {
		pf.Phase += " (" + p.Status.Reason + ")"
	}
	for _, c := range p.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			pf.Conditions = append(pf.Conditions, condition(string(c.Type), string(c.Status), c.Reason, c.Message))
		}
	}
	culprit, previous := "", false
	add := func(statuses []corev1.ContainerStatus, init bool) {
		for _, s := range statuses {
			cs := ContainerState{Name: s.Name, Init: init, State: stateOf(s.State), Ready: s.Ready, Restarts: s.RestartCount}
			if s.LastTerminationState.Terminated != nil {
				cs.LastState = stateOf(s.LastTerminationState)
			}
			pf.Containers = append(pf.Containers, cs)
			done := init && s.State.Terminated != nil && s.State.Terminated.ExitCode == 0
			if culprit == "" && !done && !s.Ready {
				culprit = s.Name
				previous = s.State.Waiting != nil && s.LastTerminationState.Terminated != nil
			}
		}
	}
	add(p.Status.InitContainerStatuses, true)
	add(p.Status.ContainerStatuses, false)
	pf.Events = eventsFor(events, map[string]bool{"Pod/" + p.Name: true})
	if culprit != "" {
		tail := int64(logLines)
		data, err := t.core.CoreV1().Pods(t.ns).GetLogs(p.Name, &corev1.PodLogOptions{Container: culprit, TailLines: &tail, Previous: previous}).DoRaw(ctx)
		pf.LogsOf = culprit
		if previous {
			pf.LogsOf += " (previous run)"
		}
		if err != nil {
			pf.Logs = []string{"(logs unavailable: " + err.Error() + ")"}
		} else if text := strings.TrimRight(string(data), "\n"); text != "" {
			pf.Logs = strings.Split(text, "\n")
		}
	}
	return pf
}

func stateOf(s corev1.ContainerState) string {
	switch {
	case s.Running != nil:
		return "running"
	case s.Waiting != nil:
		out := "waiting: " + s.Waiting.Reason
		if s.Waiting.Message != "" {
			out += ": " + s.Waiting.Message
		}
		return out
	case s.Terminated != nil:
		out := fmt.Sprintf("terminated: %s, exit code %d", s.Terminated.Reason, s.Terminated.ExitCode)
		if s.Terminated.Message != "" {
			out += ": " + s.Terminated.Message
		}
		return out
	}
	return "unknown"
}

func condition(typ, status, reason, message string) string {
	out := typ + "=" + status
	if reason != "" {
		out += " " + reason
	}
	if message != "" {
		out += ": " + message
	}
	return out
}

// conditionsOf formats an object's status conditions.
func conditionsOf(u *unstructured.Unstructured, onlyFalse bool) []string {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	var out []string
	for _, c := range conds {
		m, _ := c.(map[string]any)
		s := func(k string) string { v, _ := m[k].(string); return v }
		if onlyFalse && s("status") == "True" {
			continue
		}
		out = append(out, condition(s("type"), s("status"), s("reason"), s("message")))
	}
	return out
}

// selectorOf is a workload's pod selector.
func selectorOf(u *unstructured.Unstructured) labels.Selector {
	m, found, _ := unstructured.NestedMap(u.Object, "spec", "selector")
	if !found {
		return nil
	}
	var ls metav1.LabelSelector
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, &ls); err != nil {
		return nil
	}
	sel, err := metav1.LabelSelectorAsSelector(&ls)
	if err != nil || sel.Empty() {
		return nil
	}
	return sel
}

func ownedBy(refs []metav1.OwnerReference, uid types.UID) bool {
	for _, r := range refs {
		if r.UID == uid {
			return true
		}
	}
	return false
}

// eventsFor are the most recent events (at most 6, oldest first) about
// the involved objects ("Kind/name").
func eventsFor(all []corev1.Event, involved map[string]bool) []string {
	var evs []corev1.Event
	for _, e := range all {
		if involved[e.InvolvedObject.Kind+"/"+e.InvolvedObject.Name] {
			evs = append(evs, e)
		}
	}
	sort.SliceStable(evs, func(i, j int) bool { return eventTime(evs[i]).Before(eventTime(evs[j])) })
	if len(evs) > 6 {
		evs = evs[len(evs)-6:]
	}
	var out []string
	for _, e := range evs {
		s := e.Type + " " + e.Reason
		if e.Count > 1 {
			s += fmt.Sprintf(" (x%d)", e.Count)
		}
		out = append(out, s+": "+strings.TrimSpace(e.Message))
	}
	return out
}

func eventTime(e corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.FirstTimestamp.Time
}

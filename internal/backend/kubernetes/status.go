package kubernetes

import (
	"context"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

// StatusOptions configure Status (none yet).
type StatusOptions struct{}

// WorkloadStatus is one workload of the stack (a Deployment, StatefulSet
// or Job), for `status`.
type WorkloadStatus struct {
	Address   string `json:"address"`
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	Service   string `json:"service"`
	Component string `json:"component,omitempty"`
	// Ready of Desired pods are ready (a Job: succeeded of completions).
	Ready   int64 `json:"ready"`
	Desired int64 `json:"desired"`
	// Status is kstatus' (Current, InProgress, Failed, Terminating); a
	// Job is Current once complete.
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
	// OK: Status is Current.
	OK   bool        `json:"ok"`
	Pods []PodStatus `json:"pods"`
}

// PodStatus is one pod of a workload.
type PodStatus struct {
	Name     string `json:"name"`
	Phase    string `json:"phase"`
	Ready    bool   `json:"ready"`
	Restarts int32  `json:"restarts"`
	// State is "running", or the state of the first container that is
	// not ready ("waiting: CrashLoopBackOff: ...").
	State     string `json:"state"`
	Node      string `json:"node,omitempty"`
	StartedAt string `json:"started_at,omitempty"`
	Uptime    string `json:"uptime,omitempty"`
}

var workloadKinds = []schema.GroupKind{
	{Group: "apps", Kind: "StatefulSet"},
	{Group: "batch", Kind: "Job"},
	{Group: "apps", Kind: "Deployment"},
}

// Status reports the stack's workloads, sorted by service, with their
// pods' phase, readiness and restarts.
func (t *Target) Status(ctx context.Context, _ StatusOptions) ([]WorkloadStatus, error) {
	kinds := map[schema.GroupKind]bool{{Group: "autoscaling", Kind: "HorizontalPodAutoscaler"}: true}
	for _, gk := range workloadKinds {
		kinds[gk] = true
	}
	live, err := t.members(ctx, kinds)
	if err != nil {
		return nil, err
	}
	pods, err := t.core.CoreV1().Pods(t.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var hpas []*desired
	for _, l := range live {
		if l.GetKind() == "HorizontalPodAutoscaler" {
			hpas = append(hpas, &desired{ref: refOf(l), obj: l})
		}
	}
	minReplicas := autoscaled(hpas)
	var out []WorkloadStatus
	for _, l := range live {
		if l.GetKind() == "HorizontalPodAutoscaler" {
			continue
		}
		lb := l.GetLabels()
		ws := WorkloadStatus{Address: refOf(l).Address(), Kind: l.GetKind(), Name: l.GetName(), Service: lb[LabelName], Component: lb[LabelComponent], Pods: []PodStatus{}}
		if ws.Service == "" {
			ws.Service = ws.Name
		}
		ws.Status, ws.Message = readiness(l, minReplicas)
		ws.OK = ws.Status == kstatus.CurrentStatus.String()
		if l.GetKind() == "Job" {
			ws.Desired = intField(l, 1, "spec", "completions")
			ws.Ready = intField(l, 0, "status", "succeeded")
		} else {
			ws.Desired = intField(l, 1, "spec", "replicas")
			ws.Ready = intField(l, 0, "status", "readyReplicas")
		}
		if sel := selectorOf(l); sel != nil {
			ws.Pods = podsOf(pods.Items, sel)
		}
		out = append(out, ws)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Service != out[j].Service {
			return out[i].Service < out[j].Service
		}
		return out[i].Kind < out[j].Kind
	})
	return out, nil
}

func intField(u *unstructured.Unstructured, def int64, path ...string) int64 {
	if v, found, _ := unstructured.NestedInt64(u.Object, path...); found {
		return v
	}
	return def
}

func podsOf(all []corev1.Pod, sel labels.Selector) []PodStatus {
	out := []PodStatus{}
	for _, p := range all {
		if !sel.Matches(labels.Set(p.Labels)) {
			continue
		}
		ps := PodStatus{Name: p.Name, Phase: string(p.Status.Phase), Ready: podOK(&p), State: "running", Node: p.Spec.NodeName}
		if p.Status.Phase == corev1.PodSucceeded {
			ps.State = "completed"
		}
		if p.DeletionTimestamp != nil {
			ps.State = "terminating"
		}
		statuses := append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...)
		for i, s := range statuses {
			ps.Restarts += s.RestartCount
			init := i < len(p.Status.InitContainerStatuses)
			if init && s.State.Terminated != nil && s.State.Terminated.ExitCode == 0 {
				continue
			}
			if !s.Ready && ps.State == "running" && p.Status.Phase != corev1.PodSucceeded {
				ps.State = s.Name + ": " + stateOf(s.State)
			}
			if !init && s.State.Running != nil && ps.StartedAt == "" {
				started := s.State.Running.StartedAt.Time
				ps.StartedAt = started.UTC().Format(time.RFC3339)
				ps.Uptime = time.Since(started).Round(time.Second).String()
			}
		}
		out = append(out, ps)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

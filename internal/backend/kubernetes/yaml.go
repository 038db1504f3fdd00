package kubernetes

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"

	"sigs.k8s.io/yaml"

	"github.com/aipairpro/orchestrator/internal/model"
)

const header = "# Rendered by orchestrator. Do not edit: change stack.yaml and render again.\n"

const headerReferences = "# Secret values are not in this file: Secrets are referenced by name and created at apply time.\n"

const headerSecrets = "# Holds secret values (rendered with secrets included): keep it out of version control.\n"

// kindRank orders objects in a file and in Artifacts.Objects: what others
// depend on first (namespace, policies, configuration, volumes, Services),
// then data services, jobs and apps, then what refers to them.
var kindRank = map[string]int{
	"Namespace":               0,
	"NetworkPolicy":           1,
	"ConfigMap":               2,
	"Secret":                  3,
	"PersistentVolumeClaim":   4,
	"Service":                 5,
	"StatefulSet":             6,
	"Job":                     7,
	"Deployment":              8,
	"PodDisruptionBudget":     9,
	"HorizontalPodAutoscaler": 10,
	"Ingress":                 11,
}

func sortObjects(objs []Object) {
	sort.SliceStable(objs, func(i, j int) bool {
		ki, kj := objs[i].GetObjectKind().GroupVersionKind().Kind, objs[j].GetObjectKind().GroupVersionKind().Kind
		if kindRank[ki] != kindRank[kj] {
			return kindRank[ki] < kindRank[kj]
		}
		return objs[i].GetName() < objs[j].GetName()
	})
}

// write serialises every file and the kustomization, and lists the objects
// in apply order.
func (r *renderer) write() error {
	var resources []string
	for _, name := range sortedKeys(r.byFile) {
		objs := r.byFile[name]
		sortObjects(objs)
		var buf bytes.Buffer
		buf.WriteString(header)
		mode := uint32(0o644)
		if name == SecretsFile {
			buf.WriteString(headerSecrets)
			mode = 0o600
		} else if r.references(objs) {
			buf.WriteString(headerReferences)
		}
		for _, o := range objs {
			y, err := marshal(o)
			if err != nil {
				return fmt.Errorf("%s %s: %w", o.GetObjectKind().GroupVersionKind().Kind, o.GetName(), err)
			}
			buf.WriteString("---\n")
			buf.Write(y)
		}
		r.arts.Files = append(r.arts.Files, model.File{Path: name, Content: buf.Bytes(), Mode: mode})
		resources = append(resources, name)
	}
	// The namespace first, for tools that apply in the listed order.
	sort.SliceStable(resources, func(i, j int) bool { return resources[i] == NamespaceFile && resources[j] != NamespaceFile })
	k, err := kustomization(r.ns, resources)
	if err != nil {
		return err
	}
	r.arts.Files = append(r.arts.Files, model.File{Path: Kustomization, Content: k, Mode: 0o644})
	sort.Slice(r.arts.Files, func(i, j int) bool { return r.arts.Files[i].Path < r.arts.Files[j].Path })
	for _, name := range resources {
		r.arts.Objects = append(r.arts.Objects, r.byFile[name]...)
	}
	sortObjects(r.arts.Objects)
	return nil
}

// references: the file's pods read Secrets it does not hold.
func (r *renderer) references(objs []Object) bool {
	for _, o := range objs {
		if s, ok := r.services[o.GetName()]; ok && (len(s.SecretMounts) > 0 || len(s.SecretEnv) > 0 || len(s.PassEnv) > 0 || len(s.PassFiles) > 0) {
			return true
		}
	}
	return false
}

// kustomizationFile is kustomize's kustomization.yaml, as far as we use it.
type kustomizationFile struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
}

func kustomization(ns string, resources []string) ([]byte, error) {
	y, err := yaml.Marshal(kustomizationFile{APIVersion: "kustomize.config.k8s.io/v1beta1", Kind: "Kustomization", Resources: resources})
	if err != nil {
		return nil, err
	}
	return append([]byte(header+"# kubectl apply -k DIR (or kubectl kustomize DIR) applies every file; each object names namespace "+ns+".\n"), y...), nil
}

// marshal writes one object as YAML with sorted keys (sigs.k8s.io/yaml goes
// through the object's JSON form, as the API machinery does), without the
// fields a typed object carries but a manifest does not set: status and a
// null creationTimestamp.
func marshal(o Object) ([]byte, error) {
	m, err := manifestJSON(o)
	if err != nil {
		return nil, err
	}
	j, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return yaml.JSONToYAML(j)
}

// manifestJSON is o's JSON form as a manifest has it: no status (typed
// objects carry one, with zero counts) and no null creationTimestamp.
// Numbers stay json.Number.
func manifestJSON(o Object) (map[string]any, error) {
	j, err := json.Marshal(o)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	delete(m, "status")
	prune(m)
	return m, nil
}

// prune drops null creationTimestamps (of pod and claim templates too) and
// empty statuses.
func prune(v any) {
	switch t := v.(type) {
	case map[string]any:
		for k, val := range t {
			if k == "creationTimestamp" && val == nil {
				delete(t, k)
				continue
			}
			prune(val)
			if sub, ok := val.(map[string]any); ok && k == "status" && len(sub) == 0 {
				delete(t, k)
			}
		}
	case []any:
		for _, e := range t {
			prune(e)
		}
	}
}

// Package kubernetes is the Phase 2 backend: it renders a deployment as
// typed Kubernetes objects (k8s.io/api), one YAML file per component plus a
// kustomization.yaml, byte-for-byte deterministic.
//
// Everything is read from the backend-neutral model: services become
// Deployments, StatefulSets (model.Service.Stateful, with
// volumeClaimTemplates) or Jobs (OneShot); named volumes become
// PersistentVolumeClaims; files become ConfigMaps; secrets become Secrets
// that the rendered files only reference by name; routes become Ingresses;
// the model's networks become NetworkPolicies. What the model does not say
// and Kubernetes needs (which user an image can run as, which paths it
// writes) comes from the image profiles in profiles.go.
//
// Plugging into the engine. Backend (backend.go) satisfies the engine's
// Backend interface: Options.Secrets defaults to the engine's secrets,
// Files go to the output directory, and Secrets, which hold values, stay in
// memory for apply (as compose's Environment does); Objects, Warnings and
// Omitted are on Backend.Last for the caller.
package kubernetes

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/distribution/reference"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/aipairpro/orchestrator/internal/model"
)

// Kustomization is the name of the rendered kustomization file.
const Kustomization = "kustomization.yaml"

// NamespaceFile holds the Namespace and the namespace-wide NetworkPolicies.
const NamespaceFile = "namespace.yaml"

// SecretsFile holds the Secrets with their values, written only with
// Options.IncludeSecrets.
const SecretsFile = "secrets.yaml"

// Labels and annotations the rendered objects carry.
const (
	LabelName      = "app.kubernetes.io/name"
	LabelInstance  = "app.kubernetes.io/instance"
	LabelComponent = "app.kubernetes.io/component"
	LabelPartOf    = "app.kubernetes.io/part-of"
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// LabelNetworkPrefix + network name marks the pods on that network;
	// one NetworkPolicy per network selects them.
	LabelNetworkPrefix = "network.dev.orchestrator/"
	// AnnotationInputs carries a SHA-256 over the contents a pod reads from
	// Secrets and ConfigMaps, so a changed password or script rolls the
	// pods that read it (Kubernetes restarts nothing when a Secret changes).
	AnnotationInputs = "dev.orchestrator/inputs-digest"
	// ManagedBy is the value of LabelManagedBy.
	ManagedBy = "orchestrator"
)

// PodSecurityLevel is a Pod Security Standards level.
type PodSecurityLevel string

// The two levels this backend renders for.
const (
	Restricted PodSecurityLevel = "restricted"
	Baseline   PodSecurityLevel = "baseline"
)

// SecretResolver gives secret values from the stack's secret state, the
// same state Phase 1 uses, so every credential is identical on both
// targets. *engine.Secrets implements it.
type SecretResolver interface {
	// Value returns one secret's value.
	Value(name string) (string, error)
	// Expand executes a template over the secrets (model.Service.SecretEnv).
	Expand(text string) (string, error)
}

// Options are what the Kubernetes backend needs besides the deployment.
type Options struct {
	// Namespace holds every object; default: the stack name.
	Namespace string
	// StorageClass of every PersistentVolumeClaim; empty: the cluster's
	// default StorageClass.
	StorageClass string
	// DefaultVolumeSize is the size of a volume whose model.Volume has no
	// SizeBytes; default 10Gi.
	DefaultVolumeSize resource.Quantity
	// IngressClass of every Ingress; empty: the cluster's default class.
	IngressClass string
	// CertIssuer is the cert-manager ClusterIssuer that signs each route's
	// certificate (annotation cert-manager.io/cluster-issuer). Default:
	// "letsencrypt" for TLS mode acme, "orchestrator-ca" for internal.
	// "-" renders no annotation (certificates provided otherwise).
	CertIssuer string
	// IngressNamespace is where the ingress controller runs; its pods may
	// reach the routed services. Default "ingress-nginx".
	IngressNamespace string
	// DNSNamespace and DNSPodLabels select the cluster DNS pods every pod
	// may query on port 53. Default: namespace kube-system, pods labelled
	// k8s-app=kube-dns.
	DNSNamespace string
	// DNSPodLabels: see DNSNamespace.
	DNSPodLabels map[string]string
	// Secrets resolves secret values. Without it no Secret is built (the
	// files still reference them) and pods carry no inputs digest.
	Secrets SecretResolver
	// IncludeSecrets writes the Secrets with their values to secrets.yaml
	// (mode 0600). Needs Secrets and, for model.Service.PassEnv, LookupEnv.
	IncludeSecrets bool
	// LookupEnv gives the values of model.Service.PassEnv (the app's own
	// secrets), which come from the environment of whoever applies.
	LookupEnv func(string) (string, bool)
	// WaitImage, when set, runs every dependency wait instead of the
	// dependant's own image.
	WaitImage string
	// ImageProfiles add to or replace the built-in profiles, keyed by image
	// repository (reference.FamiliarName: "postgres", "ghcr.io/acme/app").
	ImageProfiles map[string]ImageProfile
	// AppMaxReplicas is the app's HorizontalPodAutoscaler maximum; default
	// twice its replicas (at least 2).
	AppMaxReplicas int32
	// CPURequest is the CPU request of a service without a CPU limit;
	// default 100m. Memory is requested at its limit.
	CPURequest resource.Quantity
}

// Object is one rendered Kubernetes object.
type Object interface {
	runtime.Object
	metav1.Object
}

// Workload is the decision made for one rendered service.
type Workload struct {
	Service   string
	Component string
	// Kind is Deployment, StatefulSet or Job.
	Kind string
	// Level is the strictest Pod Security level its pods meet.
	Level PodSecurityLevel
	// Why says what the level rests on: the user it runs as, or why it
	// needs root.
	Why string
	// After are the one-shot services (Jobs) it depends on: a pod cannot
	// see a Job complete without API access, so apply runs each of them to
	// completion before it applies this workload.
	After []string
}

// Omission is a service of the model that has no Kubernetes objects.
type Omission struct {
	Service string
	Reason  string
}

// Artifacts are the backend's output.
type Artifacts struct {
	// Namespace holds every object.
	Namespace string
	// Level is the namespace's enforced Pod Security level: restricted when
	// every workload meets it, else baseline.
	Level PodSecurityLevel
	// Files are written under the output directory, sorted by path. They
	// hold no secret value unless Options.IncludeSecrets (secrets.yaml,
	// mode 0600).
	Files []model.File
	// Objects are the objects of Files in apply order: namespace,
	// policies, configuration, volumes, Services, data services, jobs,
	// apps, then budgets, autoscalers and ingresses. Secrets are among them
	// only with IncludeSecrets.
	Objects []Object
	// Secrets are the Secrets with their values, for apply; nil without
	// Options.Secrets. They live only in this process's memory.
	Secrets []*corev1.Secret
	// MissingEnv names PassEnv variables LookupEnv did not have; apply must
	// refuse to run without them, as Phase 1 does.
	MissingEnv []string
	// Workloads hold the Pod Security decision per rendered service.
	Workloads []Workload
	// Omitted are services with no objects, and why.
	Omitted []Omission
	// Warnings are things the user must know: a service left out, a wait
	// dropped, a host path turned into a scratch directory.
	Warnings []string
}

// dockerSockets are the host paths that mean "this service drives the
// Docker engine".
var dockerSockets = map[string]bool{"/var/run/docker.sock": true, "/run/docker.sock": true}

// Render builds the Kubernetes objects of a deployment and their files.
func Render(ctx context.Context, d *model.Deployment, opts Options) (*Artifacts, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r, err := newRenderer(d, opts)
	if err != nil {
		return nil, err
	}
	if err := r.render(); err != nil {
		return nil, err
	}
	return r.arts, nil
}

type renderer struct {
	d    *model.Deployment
	opts Options
	ns   string
	arts *Artifacts

	services map[string]*model.Service // rendered ones
	order    []*model.Service          // rendered, in model order
	omitted  map[string]string         // service -> reason
	files    map[string]model.File
	volumes  map[string]model.Volume
	networks map[string]model.Network
	// volumeUsers counts the rendered services mounting each named volume.
	volumeUsers map[string][]string
	workloads   map[string]*workloadPlan
	// objects per output file, before sorting.
	byFile map[string][]Object
	// secretObjs are the Secrets with values, by name.
	secretObjs map[string]*corev1.Secret
	// waitUsed: some pod waits for a dependency (the wait ConfigMap is needed).
	waitUsed bool
}

func newRenderer(d *model.Deployment, opts Options) (*renderer, error) {
	if opts.Namespace == "" {
		opts.Namespace = d.Name
	}
	if errs := validation.IsDNS1123Label(opts.Namespace); len(errs) > 0 {
		return nil, fmt.Errorf("namespace %q: %s", opts.Namespace, strings.Join(errs, "; "))
	}
	if opts.DefaultVolumeSize.IsZero() {
		opts.DefaultVolumeSize = resource.MustParse("10Gi")
	}
	if opts.CPURequest.IsZero() {
		opts.CPURequest = resource.MustParse("100m")
	}
	if opts.CertIssuer == "" {
		if d.TLS.Mode == "internal" {
			opts.CertIssuer = "orchestrator-ca"
		} else {
			opts.CertIssuer = "letsencrypt"
		}
	}
	if opts.IngressNamespace == "" {
		opts.IngressNamespace = "ingress-nginx"
	}
	if opts.DNSNamespace == "" {
		opts.DNSNamespace = "kube-system"
	}
	if opts.DNSPodLabels == nil {
		opts.DNSPodLabels = map[string]string{"k8s-app": "kube-dns"}
	}
	if opts.IncludeSecrets && opts.Secrets == nil {
		return nil, fmt.Errorf("including secrets needs the secret state (Options.Secrets)")
	}
	r := &renderer{
		d: d, opts: opts, ns: opts.Namespace,
		arts:        &Artifacts{Namespace: opts.Namespace},
		services:    map[string]*model.Service{},
		omitted:     map[string]string{},
		files:       map[string]model.File{},
		volumes:     map[string]model.Volume{},
		networks:    map[string]model.Network{},
		volumeUsers: map[string][]string{},
		workloads:   map[string]*workloadPlan{},
		byFile:      map[string][]Object{},
		secretObjs:  map[string]*corev1.Secret{},
	}
	for _, f := range d.Files {
		r.files[f.Path] = f
	}
	for _, v := range d.Volumes {
		r.volumes[v.Name] = v
	}
	for _, n := range d.Networks {
		r.networks[n.Name] = n
	}
	return r, nil
}

func (r *renderer) render() error {
	r.selectServices()
	for _, s := range r.order {
		if errs := validation.IsDNS1035Label(s.Name); len(errs) > 0 {
			return fmt.Errorf("service %q cannot be a Kubernetes Service name: %s", s.Name, strings.Join(errs, "; "))
		}
		for _, n := range effectiveNetworks(s) {
			if errs := validation.IsQualifiedName(LabelNetworkPrefix + n); len(errs) > 0 {
				return fmt.Errorf("service %s: network %q cannot be a label: %s", s.Name, n, strings.Join(errs, "; "))
			}
		}
		for _, v := range s.Volumes {
			if v.Volume != "" {
				r.volumeUsers[v.Volume] = append(r.volumeUsers[v.Volume], s.Name)
			}
		}
	}
	for _, s := range r.order {
		p, err := r.planWorkload(s)
		if err != nil {
			return fmt.Errorf("service %s: %w", s.Name, err)
		}
		r.workloads[s.Name] = p
	}
	r.arts.Level = Restricted
	for _, s := range r.order {
		p := r.workloads[s.Name]
		w := Workload{Service: s.Name, Component: s.Component, Kind: p.kind, Level: p.level, Why: p.why}
		for _, dep := range s.DependsOn {
			if t, ok := r.services[dep.Service]; ok && t.OneShot && !slices.Contains(w.After, dep.Service) {
				w.After = append(w.After, dep.Service)
			}
		}
		r.arts.Workloads = append(r.arts.Workloads, w)
		if p.level == Baseline {
			r.arts.Level = Baseline
		}
	}
	if err := r.secrets(); err != nil {
		return err
	}
	if err := r.configMaps(); err != nil {
		return err
	}
	if err := r.claims(); err != nil {
		return err
	}
	for _, s := range r.order {
		if err := r.service(s); err != nil {
			return fmt.Errorf("service %s: %w", s.Name, err)
		}
	}
	if err := r.routes(); err != nil {
		return err
	}
	r.namespace()
	r.networkPolicies()
	r.waitConfigMap()
	return r.write()
}

// selectServices decides which services get objects. The proxy (the one
// service that publishes host ports) is replaced by the Ingresses and the
// cluster's ingress controller; a service that mounts the Docker socket is
// left out, with a warning.
func (r *renderer) selectServices() {
	for i := range r.d.Services {
		s := &r.d.Services[i]
		switch {
		case len(s.Publish) > 0:
			r.omit(s.Name, "replaced by the Ingress objects: the cluster's ingress controller routes each host name and cert-manager signs its certificate", false)
		case s.OneShot && s.Isolated:
			// Such a one-shot only prepares its volumes (kestra-init gives
			// the storage volume to the image's user); a pod's fsGroup does
			// that in Kubernetes, and what waited for it need not.
			r.omit(s.Name, "only prepares its volumes' ownership, which the pod's fsGroup does in Kubernetes", false)
		case mountsDockerSocket(s):
			r.omit(s.Name, "mounts the Docker socket, and a Kubernetes node has no Docker engine to hand it "+
				"(its runtime is containerd), while mounting the node's runtime socket would give the pod root on the node, "+
				"which Pod Security baseline forbids; left out of Phase 2", true)
		default:
			r.services[s.Name] = s
			r.order = append(r.order, s)
		}
	}
	sort.Slice(r.arts.Omitted, func(i, j int) bool { return r.arts.Omitted[i].Service < r.arts.Omitted[j].Service })
}

func (r *renderer) omit(service, reason string, warn bool) {
	r.omitted[service] = reason
	r.arts.Omitted = append(r.arts.Omitted, Omission{Service: service, Reason: reason})
	if warn {
		r.warn("%s is not rendered: it %s", service, reason)
	}
}

func (r *renderer) warn(format string, args ...any) {
	r.arts.Warnings = append(r.arts.Warnings, fmt.Sprintf(format, args...))
}

func mountsDockerSocket(s *model.Service) bool {
	for _, v := range s.Volumes {
		if dockerSockets[v.HostPath] {
			return true
		}
	}
	return false
}

// fileOf is the output file of a component's objects.
func fileOf(component string) string {
	if component == "" {
		component = "custom"
	}
	return component + ".yaml"
}

func (r *renderer) add(file string, o Object) {
	o.SetNamespace(r.ns)
	r.byFile[file] = append(r.byFile[file], o)
}

// labels are the labels every object of a service carries.
func (r *renderer) labels(s *model.Service) map[string]string {
	return map[string]string{
		LabelName:      s.Name,
		LabelInstance:  r.d.Name,
		LabelComponent: s.Component,
		LabelPartOf:    r.d.Name,
		LabelManagedBy: ManagedBy,
	}
}

// stackLabels are the labels of objects that belong to no one service.
func (r *renderer) stackLabels() map[string]string {
	return map[string]string{LabelInstance: r.d.Name, LabelPartOf: r.d.Name, LabelManagedBy: ManagedBy}
}

// selector picks a service's pods.
func (r *renderer) selector(s *model.Service) map[string]string {
	return map[string]string{LabelName: s.Name, LabelInstance: r.d.Name}
}

func meta(name string, labels map[string]string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Labels: labels}
}

// repository is an image's repository without tag or digest, as Docker
// shows it ("postgres", "ghcr.io/gitroomhq/postiz-app").
func repository(image string) string {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		if i := strings.LastIndexAny(image, ":@"); i > strings.LastIndex(image, "/") {
			return image[:i]
		}
		return image
	}
	return reference.FamiliarName(named)
}

// dnsLabel turns free text (a path, a file name) into a DNS label of at
// most 63 characters, stable for the same input.
func dnsLabel(prefix, s string) string {
	var b strings.Builder
	b.WriteString(prefix)
	dash := strings.HasSuffix(prefix, "-")
	for _, c := range strings.ToLower(s) {
		if (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') {
			b.WriteRune(c)
			dash = false
		} else if !dash {
			b.WriteByte('-')
			dash = true
		}
	}
	out := strings.Trim(b.String(), "-")
	if len(out) > 63 {
		sum := shortHash(out)
		out = strings.TrimRight(out[:63-len(sum)-1], "-") + "-" + sum
	}
	return out
}

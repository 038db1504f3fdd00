// Package catalog knows how every platform component is deployed: which
// services it runs, how they are wired, their health checks, limits,
// volumes and secrets. Build turns a stack spec into a backend-neutral
// model.Deployment.
package catalog

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/aipairpro/orchestrator/internal/diag"
	"github.com/aipairpro/orchestrator/internal/model"
	"github.com/aipairpro/orchestrator/internal/spec"
	"github.com/aipairpro/orchestrator/templates"
)

// Networks. Edge joins the proxy to the services it routes to (and gives
// them a route out); Egress gives the user's own services, which the proxy
// does not route to, a route out. Every other network belongs to one
// component, is named after it (app, kestra, postiz, tracardi), has no
// route out and holds that component's services, its stores, and the
// shared PostgreSQL when the component uses it: a service reaches only
// what it uses, never another component's stores.
const (
	Edge   = "edge"
	Egress = "egress"
	// TeamNet is the network of the team's own services: the app and the
	// custom services, which reach each other and their databases there.
	TeamNet = "app"
	// PostgresNet joins PostgreSQL and its one-shot init, and nothing else.
	PostgresNet = "postgres"
)

type serviceData struct {
	Image  string `yaml:"image"`
	Memory string `yaml:"memory"`
}

type data struct {
	Components map[string]string      `yaml:"components"`
	Postgres   map[string]string      `yaml:"postgres"`
	Services   map[string]serviceData `yaml:"services"`
}

var (
	loadOnce sync.Once
	loaded   *data
	loadErr  error
)

func catalogData() (*data, error) {
	loadOnce.Do(func() {
		b, err := templates.FS.ReadFile("catalog/catalog.yaml")
		if err != nil {
			loadErr = err
			return
		}
		d := &data{}
		if err := yaml.Unmarshal(b, d); err != nil {
			loadErr = fmt.Errorf("catalog data: %w", err)
			return
		}
		loaded = d
	})
	return loaded, loadErr
}

// Pins returns the default version of each component.
func Pins() map[string]string {
	d, err := catalogData()
	if err != nil {
		// The catalog is embedded and covered by tests; a broken one is a
		// build defect, not a user error.
		panic(err)
	}
	return d.Components
}

// Build turns a loaded stack into a deployment. Problems that need the
// catalog to see (an override of a service that does not exist, a user
// service named like a platform one) come back as diagnostics that point
// into the spec.
func Build(st *spec.Stack) (*model.Deployment, diag.Diagnostics) {
	d, err := catalogData()
	if err != nil {
		return nil, diag.Diagnostics{}.Append(err)
	}
	eff := st.WithDefaults(d.Components)
	b := &builder{orig: st, st: eff, data: d, secrets: map[string]model.Secret{}, dep: &model.Deployment{
		Name:   eff.Name,
		Domain: eff.Domain,
		TLS:    model.TLS{Mode: eff.TLS.Mode, Email: eff.TLS.Email},
	}}
	b.build()
	if b.ds.HasErrors() {
		return nil, b.ds
	}
	return b.dep, b.ds
}

type builder struct {
	orig, st  *spec.Stack
	data      *data
	dep       *model.Deployment
	secrets   map[string]model.Secret
	consumers []string // of the shared PostgreSQL, each with its own role and database
	// pgNets are the component networks PostgreSQL joins: those of the
	// components that have a database.
	pgNets map[string]bool
	// provided are, per service, the variables set from secrets.
	provided         map[string]map[string]bool
	secretEnvShipped bool
	ds               diag.Diagnostics
}

func (b *builder) build() {
	if b.st.App != nil {
		b.app()
	}
	b.customServices()
	b.teamNetwork()
	if b.st.Components.Enabled("tracardi") {
		b.tracardi()
	}
	if b.st.Components.Enabled("kestra") {
		b.kestra()
	}
	if b.st.Components.Enabled("postiz") {
		b.postiz()
	}
	if b.st.Components.Enabled("portainer") {
		b.portainer()
	}
	if len(b.consumers) > 0 {
		b.postgres()
	}
	if len(b.dep.Routes) > 0 {
		sort.Slice(b.dep.Routes, func(i, j int) bool { return b.dep.Routes[i].Host < b.dep.Routes[j].Host })
		b.proxy()
	}
	b.overrides()
	b.finish()
}

// image returns the catalog's image for a service, with the component's
// version filled in.
func (b *builder) image(service, component string) string {
	img := b.data.Services[service].Image
	if c := b.st.Components.Get(component); c != nil {
		img = strings.ReplaceAll(img, "{version}", c.Version)
	}
	return img
}

// memory returns the catalog's memory limit for a service, in bytes.
func (b *builder) memory(service string) int64 {
	q, err := resource.ParseQuantity(b.data.Services[service].Memory)
	if err != nil {
		panic(fmt.Sprintf("catalog: memory of %s: %v", service, err))
	}
	return q.Value()
}

func (b *builder) add(s model.Service) {
	// The app and custom services carry the spec's replicas (0 allowed);
	// platform services run one container unless overridden.
	if s.Replicas == 0 && !s.OneShot && s.Component != "app" && s.Component != "custom" {
		s.Replicas = 1
	}
	if s.OneShot {
		s.Replicas = 1
	}
	if s.MemoryBytes == 0 {
		key := s.Name
		if s.Component == "custom" {
			key = "custom"
		}
		s.MemoryBytes = b.memory(key)
	}
	b.dep.Services = append(b.dep.Services, s)
}

// postgresOn makes PostgreSQL join a component's network, for a consumer
// there.
func (b *builder) postgresOn(network string) {
	if b.pgNets == nil {
		b.pgNets = map[string]bool{}
	}
	b.pgNets[network] = true
}

// teamNetwork puts the team's own services (the app and the custom
// services) on their network when there is more than one of them: they may
// call each other (a worker's port). One with a database is there already.
func (b *builder) teamNetwork() {
	var team []int
	for i, s := range b.dep.Services {
		if s.Component == "app" || s.Component == "custom" {
			team = append(team, i)
		}
	}
	if len(team) < 2 {
		return
	}
	for _, i := range team {
		b.dep.Services[i].Networks = appendUnique(b.dep.Services[i].Networks, TeamNet)
	}
}

func (b *builder) secret(name string, kind model.SecretKind) string {
	b.secrets[name] = model.Secret{Name: name, Generate: kind}
	return name
}

func (b *builder) derived(name, template string) string {
	b.secrets[name] = model.Secret{Name: name, Template: template}
	return name
}

func (b *builder) route(host, service string, port int) {
	b.dep.Routes = append(b.dep.Routes, model.Route{Host: host, Service: service, Port: port, URL: b.urlOf(host)})
}

// host is the public host name of a component: the apex for "", else
// <sub>.<domain>.
func (b *builder) host(sub string) string {
	if sub == "" {
		return b.st.Domain
	}
	return sub + "." + b.st.Domain
}

// publicURL is the URL a browser uses for the component served at
// host(sub). Every public URL the catalog hands to a component, and every
// URL `up` prints, comes from here.
func (b *builder) publicURL(sub string) string { return b.urlOf(b.host(sub)) }

// urlOf is PublicURL for this stack's HTTPS port.
func (b *builder) urlOf(host string) string { return PublicURL(host, b.st.Phase1.HTTPSPort) }

// PublicURL is "https://host", with ":port" when the proxy publishes HTTPS
// on a port other than 443 (0 means the default). Components that compare
// the browser's origin with their configured URL (Postiz, Kestra) need the
// port: https://host and https://host:8443 are different origins.
func PublicURL(host string, httpsPort int) string {
	if httpsPort == 0 || httpsPort == 443 {
		return "https://" + host
	}
	return "https://" + host + ":" + strconv.Itoa(httpsPort)
}

// secretRef is the template text that stands for a secret's value.
func secretRef(name string) string {
	return fmt.Sprintf(`{{ secret %q }}`, name)
}

// finish sorts everything and collects the volumes and networks the
// services use, so backends render a deterministic deployment.
func (b *builder) finish() {
	sort.Slice(b.dep.Services, func(i, j int) bool { return b.dep.Services[i].Name < b.dep.Services[j].Name })
	vols := map[string]bool{}
	nets := map[string]bool{}
	for _, s := range b.dep.Services {
		for _, v := range s.Volumes {
			if v.Volume != "" {
				vols[v.Volume] = true
			}
		}
		for _, n := range s.Networks {
			nets[n] = true
		}
	}
	for _, name := range slices.Sorted(maps.Keys(vols)) {
		v := model.Volume{Name: name}
		if name == "postgres-data" {
			q := resource.MustParse(b.st.Database.Storage)
			v.SizeBytes = q.Value()
		}
		b.dep.Volumes = append(b.dep.Volumes, v)
	}
	for _, name := range slices.Sorted(maps.Keys(nets)) {
		b.dep.Networks = append(b.dep.Networks, model.Network{Name: name, Internal: name != Edge && name != Egress})
	}
	for _, name := range slices.Sorted(maps.Keys(b.secrets)) {
		b.dep.Secrets = append(b.dep.Secrets, b.secrets[name])
	}
	sort.Slice(b.dep.Files, func(i, j int) bool { return b.dep.Files[i].Path < b.dep.Files[j].Path })
}

// logHealth is the common shape of an HTTP healthcheck command for images
// that ship busybox or GNU wget.
func wgetHealth(url string) []string {
	return []string{"CMD", "wget", "-q", "-O", "/dev/null", url}
}

func health(test []string, startSec int) *model.Healthcheck {
	return &model.Healthcheck{Test: test, IntervalSec: 10, TimeoutSec: 5, Retries: 5, StartSec: startSec}
}

func suggestName(s string, candidates []string) string { return spec.Suggest(s, candidates) }

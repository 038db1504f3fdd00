package spec

import (
	"fmt"
	"net/netip"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aipairpro/orchestrator/internal/lazyre"

	"github.com/distribution/reference"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/aipairpro/orchestrator/internal/diag"
)

var (
	dnsLabelRe = lazyre.New(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	envNameRe  = lazyre.New(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// emailRe is an address ACME servers take and Caddy cannot misread: a
	// dot-atom local part of RFC 5322's atext without '{', '}' and '`'
	// (Caddy's placeholders and quotes), '@', and a DNS name of at least
	// two labels. The Caddyfile still quotes it (see catalog.caddyToken).
	emailRe = lazyre.New(`^[A-Za-z0-9!#$%&'*+/=?^_|~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_|~-]+)*@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$`)
)

// SupportedPostgres lists the PostgreSQL majors the catalog can render.
var SupportedPostgres = []string{"16", "17", "18"}

// Validate runs the semantic checks that types alone cannot express. It
// reports every problem, not only the first.
func Validate(s *Stack) diag.Diagnostics {
	v := &validator{s: s}
	v.stack()
	return v.ds
}

type validator struct {
	s  *Stack
	ds diag.Diagnostics
}

func (v *validator) errorf(path, hint, format string, args ...any) {
	if v.broken(path) {
		return
	}
	v.ds.Errorf(v.s.Pos(path), path, hint, format, args...)
	v.ds[len(v.ds)-1].Width = v.s.width(path)
}

// broken reports whether path or a parent already failed a structural
// check, so it is not reported twice.
func (v *validator) broken(path string) bool {
	if v.s.src == nil {
		return false
	}
	for p := path; ; p = parentPath(p) {
		if v.s.src.broken[p] {
			return true
		}
		if p == "" {
			return false
		}
	}
}

func (v *validator) present(path string) bool {
	return v.s.src == nil || v.s.src.values[path] != nil
}

func (v *validator) stack() {
	s := v.s
	if !v.present("version") {
		v.errorf("version", "add `version: 1` at the top", "missing required key %q", "version")
	} else if s.Version != Version {
		v.errorf("version", "this build reads version 1 specs", "unsupported spec version %d", s.Version)
	}
	switch {
	case s.Name == "":
		v.errorf("name", "add e.g. `name: acme` (lower case letters, digits and '-')", "missing required key %q", "name")
	case !dnsLabelRe().MatchString(s.Name):
		v.errorf("name", fmt.Sprintf("try %q", ToDNSLabel(s.Name)), "name %q is not a DNS label: lower case letters, digits and '-', at most 63, starting and ending with a letter or digit", s.Name)
	}
	v.domain()
	v.tls()
	if s.App != nil {
		v.workload("app", s.App.Image, s.App.Port, s.App.Health, s.App.Replicas, s.App.Env, s.App.Secrets, s.App.Database)
		if s.App.Command != nil && len(s.App.Command) == 0 {
			v.errorf("app.command", "remove the key to keep the image's command", "command is an empty list")
		}
	}
	v.components()
	v.database()
	names := make([]string, 0, len(s.Services))
	for name := range s.Services {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		svc := s.Services[name]
		p := "services." + name
		if !dnsLabelRe().MatchString(name) {
			v.ds.Errorf(v.s.KeyPos(p), p, fmt.Sprintf("try %q", ToDNSLabel(name)), "service name %q is not a DNS label: lower case letters, digits and '-'", name)
		}
		v.workload(p, svc.Image, svc.Port, svc.Health, svc.Replicas, svc.Env, svc.Secrets, svc.Database)
		if svc.Health != "" && svc.Port == 0 {
			v.errorf(p+".health", "add `port:` so the health path can be probed", "health is set but port is not")
		}
	}
	onames := make([]string, 0, len(s.Overrides))
	for name := range s.Overrides {
		onames = append(onames, name)
	}
	sort.Strings(onames)
	for _, name := range onames {
		v.override("overrides."+name, s.Overrides[name])
	}
	v.phase1()
	v.phase2()
}

func (v *validator) domain() {
	d := v.s.Domain
	switch {
	case d == "":
		v.errorf("domain", "add e.g. `domain: acme.example.com`; on a laptop use `domain: acme.localhost` with `tls: {mode: internal}`", "missing required key %q", "domain")
		return
	case strings.Contains(d, "://"):
		v.errorf("domain", fmt.Sprintf("write the bare host name: %q", d[strings.Index(d, "://")+3:]), "domain %q has a scheme", d)
		return
	}
	if !IsDomain(d) {
		v.errorf("domain", "use a lower-case DNS name such as acme.example.com", "domain %q is not a valid DNS name", d)
	}
}

func (v *validator) tls() {
	t := v.s.TLS
	switch t.Mode {
	case "", "acme", "internal":
	default:
		v.errorf("tls.mode", suggestHint(t.Mode, []string{"acme", "internal"}), "unknown tls mode %q; expected acme or internal", t.Mode)
	}
	if t.Email != "" && !emailRe().MatchString(t.Email) {
		v.errorf("tls.email", "use an address such as ops@example.com", "tls email %q is not an e-mail address", t.Email)
	}
	if (t.Mode == "" || t.Mode == "acme") && IsDomain(v.s.Domain) && !PublicDomain(v.s.Domain) {
		path := "tls.mode"
		if t.Mode == "" {
			path = "domain"
		}
		v.ds.Warnf(v.s.Pos(path), path, "set `tls: {mode: internal}` (a local CA; works offline), or use a public domain",
			"no public ACME CA issues certificates for %q: it is not a public domain", v.s.Domain)
	}
}

// nonPublicSuffixes are names no public certificate authority will sign:
// special-use and reserved names (RFC 2606, 6761, 6762, 8375), ICANN's
// private-use .internal, and names ICANN will not delegate and people use
// on private networks (.lan, .corp, .home).
var nonPublicSuffixes = []string{"localhost", "test", "example", "invalid", "local", "internal", "home.arpa", "lan", "corp", "home"}

// PublicDomain reports whether d can have a publicly trusted certificate:
// false for single-label names and names under nonPublicSuffixes
// (acme.localhost, app.test, box.home.arpa). It does not look anything up.
func PublicDomain(d string) bool {
	if !strings.Contains(d, ".") {
		return false
	}
	for _, suffix := range nonPublicSuffixes {
		if d == suffix || strings.HasSuffix(d, "."+suffix) {
			return false
		}
	}
	return true
}

func suggestHint(got string, options []string) string {
	if s := suggest(got, options); s != "" {
		return fmt.Sprintf("did you mean %q?", s)
	}
	return "expected one of: " + strings.Join(options, ", ")
}

func (v *validator) workload(p, image string, port int, health string, replicas *int, env map[string]string, secrets []string, database bool) {
	if image == "" {
		v.errorf(p, fmt.Sprintf("add `image:` under %s, pinned to a version, e.g. ghcr.io/acme/app:1.0.0", p), "missing required key %q", "image")
	} else {
		v.image(p+".image", image)
	}
	if v.present(p+".port") && (port < 1 || port > 65535) {
		v.errorf(p+".port", "", "port %d is out of range 1-65535", port)
	}
	if health != "" && !strings.HasPrefix(health, "/") {
		v.errorf(p+".health", fmt.Sprintf("write %q", "/"+health), "health %q must be an HTTP path starting with '/'", health)
	} else if why := httpPathProblem(health); why != "" {
		v.errorf(p+".health", "percent-encode other characters, e.g. %20 for a space", "health %q is not an HTTP path: %s", health, why)
	}
	if replicas != nil && *replicas < 0 {
		v.errorf(p+".replicas", "", "replicas must be 0 or more, got %d", *replicas)
	}
	v.env(p+".env", env)
	seen := map[string]bool{}
	for i, name := range secrets {
		sp := fmt.Sprintf("%s.secrets[%d]", p, i)
		switch {
		case !envNameRe().MatchString(name):
			v.errorf(sp, "secret names are environment variable names: letters, digits and '_'", "secret name %q is not a valid environment variable name", name)
		case seen[name]:
			v.errorf(sp, "remove the repeated name", "secret %q is listed twice", name)
		case env[name] != "":
			v.errorf(sp, "remove it from env: secret values come from the environment when applying", "%q is both a plain env variable and a secret", name)
		case database && name == "DATABASE_URL":
			v.errorf(sp, "remove it: with `database: true` DATABASE_URL is provided", "secret %q collides with the provided DATABASE_URL", name)
		}
		seen[name] = true
	}
	if _, ok := env["DATABASE_URL"]; ok && database {
		v.errorf(p+".env.DATABASE_URL", "remove it: with `database: true` DATABASE_URL is provided", "env DATABASE_URL collides with the provided DATABASE_URL")
	}
}

// httpPathProblem says why s is not an absolute URL path with an optional
// query as RFC 3986 writes them (unreserved and sub-delimiter characters,
// ':', '@', '/', '?' and %XX escapes), or "" when it is one. Shell
// metacharacters such as ';', '&' and '$' are legal there, so the probe
// quotes the URL for the shell (catalog.httpProbe).
func httpPathProblem(s string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.IndexByte("-._~!$&'()*+,;=:@/?", c) >= 0:
		case c == '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return "'%' must start an escape such as %20"
			}
			i += 2
		default:
			r, _ := utf8.DecodeRuneInString(s[i:])
			return strconv.QuoteRune(r) + " is not allowed in a URL path or query"
		}
	}
	return ""
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// IsName reports whether s can be a stack's name: a DNS label.
func IsName(s string) bool { return dnsLabelRe().MatchString(s) }

// IsDomain reports whether s can be a stack's domain: DNS labels joined by
// dots.
func IsDomain(s string) bool {
	if s == "" {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if !dnsLabelRe().MatchString(label) {
			return false
		}
	}
	return true
}

func (v *validator) env(p string, env map[string]string) {
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !envNameRe().MatchString(k) {
			v.ds.Errorf(v.s.KeyPos(p+"."+k), p+"."+k, "use letters, digits and '_', not starting with a digit", "%q is not a valid environment variable name", k)
		}
	}
}

func (v *validator) image(p, img string) {
	ref, err := reference.ParseNormalizedNamed(img)
	if err != nil {
		v.errorf(p, "use registry/name:tag, e.g. ghcr.io/acme/app:1.4.2", "image %q is not a valid image reference: %v", img, err)
		return
	}
	_, digested := ref.(reference.Digested)
	tagged, isTagged := ref.(reference.Tagged)
	switch {
	case digested:
	case !isTagged:
		v.errorf(p, fmt.Sprintf("pin an exact version, e.g. %s:1.0.0", img), "image %q has no tag; unpinned images change under you", img)
	case tagged.Tag() == "latest":
		v.errorf(p, "pin an exact version instead of latest", "image %q uses the moving tag latest", img)
	}
}

func (v *validator) components() {
	v.kestraDockerTasks()
	c := v.s.Components
	for _, e := range []struct {
		name string
		c    *Component
	}{{"tracardi", c.Tracardi}, {"kestra", c.Get("kestra")}, {"postiz", c.Postiz}, {"portainer", c.Portainer}} {
		if e.c == nil {
			continue
		}
		p := "components." + e.name + ".version"
		if v.present(p) {
			switch ver := e.c.Version; {
			case ver == "":
				v.errorf(p, "remove the key to use the catalog's pin", "version is empty")
			case ver == "latest":
				v.errorf(p, "pin an exact upstream tag, or remove the key to use the catalog's pin", "version latest is a moving tag")
			case !tagRe().MatchString(ver):
				v.errorf(p, "use the upstream image tag, e.g. v2.23.0", "version %q is not a valid image tag", ver)
			}
		}
	}
}

var tagRe = lazyre.New(`^[\w][\w.-]{0,127}$`)

// kestraDockerTasks warns about what the opt-in grants.
func (v *validator) kestraDockerTasks() {
	const p = "components.kestra.docker_tasks"
	if !v.s.Components.KestraDockerTasks() {
		return
	}
	v.ds.Warnf(v.s.Pos(p), p, "leave it off unless every user who can edit a flow may administer this host; script tasks can run in Kestra's container instead (taskRunner: Process)",
		"Kestra gets the host's Docker socket, read-write, and runs as root: anyone who can edit a flow controls the host")
	if !v.s.Components.Enabled("kestra") {
		v.ds.Warnf(v.s.Pos(p), p, "enable Kestra or remove docker_tasks", "docker_tasks has no effect while Kestra is disabled")
	}
}

func (v *validator) database() {
	d := v.s.Database
	if v.present("database.version") {
		ok := false
		for _, s := range SupportedPostgres {
			ok = ok || d.Version == s
		}
		if !ok {
			v.errorf("database.version", "supported majors: "+strings.Join(SupportedPostgres, ", "), "unsupported PostgreSQL version %q", d.Version)
		}
	}
	if v.present("database.storage") {
		v.quantity("database.storage", d.Storage)
	}
}

func (v *validator) quantity(p, q string) {
	qq, err := resource.ParseQuantity(q)
	if err != nil || qq.Sign() <= 0 {
		v.errorf(p, "use a Kubernetes quantity such as 512Mi, 2Gi or 20Gi", "%q is not a positive size", q)
	}
}

func (v *validator) override(p string, o Override) {
	if o.Image != "" {
		v.image(p+".image", o.Image)
	}
	v.env(p+".env", o.Env)
	if o.Resources != nil {
		if o.Resources.Memory != "" {
			v.quantity(p+".resources.memory", o.Resources.Memory)
		}
		if o.Resources.CPUs < 0 {
			v.errorf(p+".resources.cpus", "", "cpus must be positive")
		}
	}
	if o.Replicas != nil && *o.Replicas < 0 {
		v.errorf(p+".replicas", "", "replicas must be 0 or more, got %d", *o.Replicas)
	}
	if o.Command != nil && len(o.Command) == 0 {
		v.errorf(p+".command", "remove the key to keep the rendered command", "command is an empty list")
	}
	if h := o.Healthcheck; h != nil {
		hp := p + ".healthcheck"
		if len(h.Test) > 0 {
			switch h.Test[0] {
			case "CMD", "CMD-SHELL", "NONE":
				if h.Test[0] == "CMD-SHELL" && len(h.Test) != 2 {
					v.errorf(hp+".test", `write [CMD-SHELL, "the whole command"]`, "CMD-SHELL takes exactly one command string")
				}
				if h.Test[0] == "CMD" && len(h.Test) < 2 {
					v.errorf(hp+".test", "write [CMD, program, arg...]", "CMD needs a program")
				}
			default:
				v.errorf(hp+".test[0]", "start the list with CMD, CMD-SHELL or NONE", "healthcheck test must start with CMD, CMD-SHELL or NONE, got %q", h.Test[0])
			}
		} else if !h.Disable {
			v.errorf(hp, "add `test: [CMD, ...]`, or `disable: true`", "healthcheck has no test")
		}
		for _, d := range []struct{ key, val string }{{"interval", h.Interval}, {"timeout", h.Timeout}, {"start_period", h.StartPeriod}} {
			if d.val == "" {
				continue
			}
			if dur, err := time.ParseDuration(d.val); err != nil || dur < 0 {
				v.errorf(hp+"."+d.key, "use a duration such as 10s or 1m30s", "%q is not a duration", d.val)
			}
		}
		if h.Retries != nil && *h.Retries < 0 {
			v.errorf(hp+".retries", "", "retries must be 0 or more")
		}
	}
}

func (v *validator) phase1() {
	for _, p := range []struct {
		key  string
		port int
	}{{"phase1.http_port", v.s.Phase1.HTTPPort}, {"phase1.https_port", v.s.Phase1.HTTPSPort}} {
		if v.present(p.key) && (p.port < 1 || p.port > 65535) {
			v.errorf(p.key, "", "port %d is out of range 1-65535", p.port)
		}
	}
	if v.s.Phase1.HTTPPort != 0 && v.s.Phase1.HTTPPort == v.s.Phase1.HTTPSPort {
		v.errorf("phase1.https_port", "use two different ports", "http_port and https_port are both %d", v.s.Phase1.HTTPPort)
	}
	if b := v.s.Phase1.Bind; b != "" {
		// Docker publishes on an address, not a host name or interface.
		if a, err := netip.ParseAddr(b); err != nil || a.Zone() != "" {
			v.errorf("phase1.bind", "use an IP address of the host, e.g. 127.0.0.1 for this machine only; leave bind out for every interface",
				"bind address %q is not an IP address", b)
		}
	}
	h := v.s.Phase1.Host
	if h == "" {
		return
	}
	u, err := url.Parse(h)
	if err != nil || u.Scheme == "" {
		v.errorf("phase1.host", "use ssh://user@host, tcp://host:2376 or unix:///var/run/docker.sock", "docker host %q is not a URL", h)
		return
	}
	switch u.Scheme {
	case "ssh", "tcp":
		if u.Host == "" {
			v.errorf("phase1.host", "e.g. ssh://deploy@203.0.113.10", "docker host %q has no host name", h)
		}
	case "unix", "npipe":
	default:
		v.errorf("phase1.host", "use ssh://, tcp://, unix:// or npipe://", "unsupported docker host scheme %q", u.Scheme)
	}
}

func (v *validator) phase2() {
	p := v.s.Phase2
	switch p.Provider {
	case "", "aws", "gcp", "azure":
	default:
		v.errorf("phase2.provider", suggestHint(p.Provider, []string{"aws", "gcp", "azure"}), "unknown provider %q; expected aws, gcp or azure", p.Provider)
	}
	if p.Provider != "" && p.Region == "" {
		v.errorf("phase2", "add e.g. `region: eu-west-1`", "phase2.provider is set but region is not")
	}
	if p.Region != "" && !regionRe().MatchString(p.Region) {
		v.errorf("phase2.region", "e.g. eu-west-1, europe-west1 or westeurope", "region %q is not a region name", p.Region)
	}
}

var regionRe = lazyre.New(`^[a-z][a-z0-9-]*[a-z0-9]$`)

// ToDNSLabel turns any string into a DNS label, for suggestions and defaults.
func ToDNSLabel(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	out := strings.Trim(b.String(), "-")
	if len(out) > 63 {
		out = strings.Trim(out[:63], "-")
	}
	if out == "" {
		return "my-stack"
	}
	return out
}

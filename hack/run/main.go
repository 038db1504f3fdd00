// Command run is `make run` and `make stop`: the example platform
// (examples/platform/stack.yaml) up on the local Docker engine, every service
// healthy, its URLs and where its credentials are, then `orchestrator status`.
// Run again it changes nothing; `run down` removes it, volumes included.
//
//	go run ./hack/run [-http-port 18080] [-https-port 18443] [up|down]
//
// The example is written for a VPS; rendered/run/stack.yaml is the same
// stack made to run on this machine: the local engine (DOCKER_HOST or the
// docker context, started by hack/testenv/docker-engine.sh when none
// answers) instead of its phase1.host, high ports instead of 80 and 443
// (which may be taken or need root), and <name>.localhost with the local CA
// instead of a public domain with ACME.
//
// Which images run is decided by orchestrator's own check, not by this
// program: `orchestrator plan --output json` lists the images the engine
// neither has nor can pull (unavailable_images). Those services run on the
// stand-ins of hack/testenv, with the overrides the end-to-end tests use
// (test/e2e/testdata/platform.yaml.tmpl), and one line says so. When one
// platform component needs a stand-in, they all get one, since a real
// component cannot talk to a stand-in of another; the stack's own services
// (app, services:) are decided one by one.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"text/template"

	"go.yaml.in/yaml/v3"
)

type options struct {
	bin, spec, dir, tmpl string
	httpPort, httpsPort  int
}

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "bin/orchestrator", "the orchestrator binary")
	flag.StringVar(&o.spec, "spec", "examples/platform/stack.yaml", "the example stack")
	flag.StringVar(&o.dir, "dir", "rendered/run", "where the stack made for this machine, its rendered files and its state live")
	flag.StringVar(&o.tmpl, "standins", "test/e2e/testdata/platform.yaml.tmpl", "the stand-in overrides of the platform's services")
	flag.IntVar(&o.httpPort, "http-port", 18080, "host port of the proxy's HTTP")
	flag.IntVar(&o.httpsPort, "https-port", 18443, "host port of the proxy's HTTPS")
	flag.Parse()
	var err error
	switch flag.Arg(0) {
	case "", "up":
		err = up(o)
	case "down":
		err = down(o)
	default:
		err = fmt.Errorf("unknown command %q: use up or down", flag.Arg(0))
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		os.Exit(exit.ExitCode()) // the command said why
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "run: error: %v\n", err)
		os.Exit(1)
	}
}

func up(o options) error {
	if err := command("", nil, "bash", "hack/testenv/docker-engine.sh").Run(); err != nil {
		return err
	}
	doc, err := readYAML(o.spec)
	if err != nil {
		return err
	}
	spec := doc.Content[0]
	name := makeLocal(doc, o)

	changes, err := imageCheck(o, doc, name)
	if err != nil {
		return err
	}
	standIns, all := chooseStandIns(spec, changes)
	skipPreflight := false
	if len(standIns) > 0 {
		cmd := command("", nil, "bash", "hack/testenv/images.sh")
		cmd.Stdout = nil
		out, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("hack/testenv/images.sh: %w", err)
		}
		images := map[string]string{}
		for _, line := range strings.Split(string(out), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				images[k] = v
			}
		}
		if err := applyStandIns(o, spec, name, standIns, images); err != nil {
			return err
		}
		// Stand-ins are not Elasticsearch and need none of the host's
		// limits; a real component among them still gets checked.
		skipPreflight = len(standIns) == len(all)
		note := ""
		if skipPreflight {
			note = "; preflight skipped"
		}
		fmt.Fprintf(os.Stderr, "Stand-ins: %d of %d services run on hack/testenv's local images (same topology, healthchecks and secrets; not the real apps), as their upstream images cannot be pulled here (%s)%s.\n",
			len(standIns), len(all), reasons(changes.UnavailableImages), note)
	}
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return err
	}
	b, err := encodeYAML(doc)
	if err != nil {
		return err
	}
	if err := writeIfChanged(filepath.Join(o.dir, "stack.yaml"), b); err != nil {
		return err
	}
	args := []string{"up"}
	if skipPreflight {
		args = append(args, "--skip-preflight")
	}
	if err := orchestrator(o, args...); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "Ports %d (HTTP) and %d (HTTPS) instead of 80 and 443; `make stop` removes the stack, volumes included.\n", o.httpPort, o.httpsPort)
	return orchestrator(o, "status")
}

func down(o options) error {
	if _, err := os.Stat(filepath.Join(o.dir, "stack.yaml")); errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(os.Stderr, "Nothing to stop: %s has no stack (make run writes it).\n", o.dir)
		return nil
	}
	return orchestrator(o, "down", "--volumes", "--yes")
}

// makeLocal turns the example's VPS settings into this machine's and
// returns the stack's name.
func makeLocal(doc *yaml.Node, o options) string {
	spec := doc.Content[0]
	name := get(spec, "name").Value
	set(spec, "domain", scalar(name+".localhost"))
	set(spec, "tls", flowMap("mode", scalar("internal")))
	set(spec, "phase1", flowMap("http_port", scalar(fmt.Sprint(o.httpPort)), "https_port", scalar(fmt.Sprint(o.httpsPort))))
	// Below the example's own head comment, which starts with the
	// schema modeline editors look for; yaml.v3 keeps it on the document,
	// the mapping or the first key.
	note := "# Written by `make run` (hack/run) from " + o.spec + " for this machine; edits are overwritten."
	for _, n := range []*yaml.Node{doc, spec, spec.Content[0]} {
		if n.HeadComment != "" {
			n.HeadComment += "\n#\n" + note
			return name
		}
	}
	doc.HeadComment = note
	return name
}

// planChanges is what hack/run reads of `orchestrator plan --output json`.
type planChanges struct {
	ResourceChanges []struct {
		Type, Name string
	} `json:"resource_changes"`
	UnavailableImages []unavailableImage `json:"unavailable_images"`
}

type unavailableImage struct {
	Image    string   `json:"image"`
	Services []string `json:"services"`
	Reason   string   `json:"reason"`
}

// imageCheck plans the stack as written for this machine, under another
// project name and with a throw-away state, so that only its images count:
// nothing of a stack already running (containers, volumes, the PostgreSQL
// major of its data) takes part, and every service is to be created.
func imageCheck(o options, doc *yaml.Node, name string) (*planChanges, error) {
	tmp, err := os.MkdirTemp("", "orchestrator-run-images")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	probe, err := clone(doc)
	if err != nil {
		return nil, err
	}
	set(probe.Content[0], "name", scalar(name+"-image-check"))
	b, err := encodeYAML(probe)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(tmp, "stack.yaml"), b, 0o644); err != nil {
		return nil, err
	}
	bin, err := filepath.Abs(o.bin)
	if err != nil {
		return nil, err
	}
	var stdout, stderr bytes.Buffer
	cmd := command(tmp, appEnv(), bin, "plan", "--output", "json")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("the image check (orchestrator plan of the example) failed: %v\n%s", err, stderr.String())
	}
	var p planChanges
	if err := json.Unmarshal(stdout.Bytes(), &p); err != nil {
		return nil, fmt.Errorf("orchestrator plan --output json: %v", err)
	}
	return &p, nil
}

// chooseStandIns returns the services to run on stand-ins, sorted, and
// every service of the stack.
func chooseStandIns(spec *yaml.Node, p *planChanges) (standIns, all []string) {
	own := map[string]bool{}
	if get(spec, "app") != nil {
		own["app"] = true
	}
	if svcs := get(spec, "services"); svcs != nil {
		for i := 0; i < len(svcs.Content); i += 2 {
			own[svcs.Content[i].Value] = true
		}
	}
	need := map[string]bool{}
	platform := false
	for _, im := range p.UnavailableImages {
		for _, s := range im.Services {
			need[s] = true
			platform = platform || !own[s]
		}
	}
	for _, c := range p.ResourceChanges {
		if c.Type != "service" {
			continue
		}
		all = append(all, c.Name)
		if need[c.Name] || platform && !own[c.Name] {
			standIns = append(standIns, c.Name)
		}
	}
	slices.Sort(standIns)
	return standIns, all
}

// applyStandIns overrides each service in standIns: a platform service
// with the e2e tests' override, one of the stack's own with the web
// stand-in answering on its port. Keys the example overrides for other
// reasons (postiz's memory) stay.
func applyStandIns(o options, spec *yaml.Node, name string, standIns []string, images map[string]string) error {
	raw, err := os.ReadFile(o.tmpl)
	if err != nil {
		return err
	}
	var filled bytes.Buffer
	err = template.Must(template.New("standins").Parse(string(raw))).Execute(&filled, map[string]any{
		"Name": name, "Web": images["ORCHESTRATOR_TESTENV_WEB_IMAGE"], "Postgres": images["ORCHESTRATOR_TESTENV_POSTGRES_IMAGE"],
		"HTTPPort": o.httpPort, "HTTPSPort": o.httpsPort,
	})
	if err != nil {
		return err
	}
	var tmpl yaml.Node
	if err := yaml.Unmarshal(filled.Bytes(), &tmpl); err != nil {
		return fmt.Errorf("%s: %w", o.tmpl, err)
	}
	known := get(tmpl.Content[0], "overrides")
	overrides := get(spec, "overrides")
	if overrides == nil {
		overrides = &yaml.Node{Kind: yaml.MappingNode}
		set(spec, "overrides", overrides)
	}
	for _, svc := range standIns {
		add := get(known, svc)
		if add == nil {
			if !isOwn(spec, svc) {
				return fmt.Errorf("service %s has no stand-in in %s; add one there", svc, o.tmpl)
			}
			port := "8080"
			if p := get(ownService(spec, svc), "port"); p != nil {
				port = p.Value
			}
			add = flowMap(
				"image", quoted(images["ORCHESTRATOR_TESTENV_WEB_IMAGE"]),
				"env", flowMap("PORTS", quoted(port)),
				"healthcheck", flowMap(
					"test", flowSeq(scalar("CMD"), scalar("/standin"), scalar("probe"), quoted("http://127.0.0.1:"+port+"/")),
					"interval", scalar("2s"), "timeout", scalar("3s"), "retries", scalar("30")))
		}
		into := get(overrides, svc)
		if into == nil {
			into = &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle}
			set(overrides, svc, into)
		}
		for i := 0; i < len(add.Content); i += 2 {
			set(into, add.Content[i].Value, add.Content[i+1])
		}
	}
	return nil
}

func isOwn(spec *yaml.Node, svc string) bool { return ownService(spec, svc) != nil }

// ownService is the spec's node of one of the stack's own services.
func ownService(spec *yaml.Node, svc string) *yaml.Node {
	if svc == "app" {
		return get(spec, "app")
	}
	return get(get(spec, "services"), svc)
}

var reasonWords = map[string]string{
	"unreachable": "registry not reachable", "not-found": "not found",
	"unauthorized": "unauthorised", "error": "pull check failed",
}

// reasons says why, once per kind, in orchestrator's words.
func reasons(images []unavailableImage) string {
	var out []string
	for _, im := range images {
		if w := reasonWords[im.Reason]; !slices.Contains(out, w) {
			out = append(out, w)
		}
	}
	return strings.Join(out, ", ")
}

// orchestrator runs the binary on the stack in o.dir, with its output.
func orchestrator(o options, args ...string) error {
	bin, err := filepath.Abs(o.bin)
	if err != nil {
		return err
	}
	return command(o.dir, appEnv(), bin, args...).Run()
}

// appEnv gives the example app's pass-through secret a value when the
// environment has none: up and plan refuse to run without it.
func appEnv() []string {
	if _, ok := os.LookupEnv("OPENAI_API_KEY"); ok {
		return nil
	}
	return []string{"OPENAI_API_KEY=make-run-placeholder"}
}

// command is name with args in dir, extra added to this process's
// environment without its ORCHESTRATOR_* settings (they would point the
// stack at another spec or state), wired to this process's streams.
func command(dir string, extra []string, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ORCHESTRATOR_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, extra...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	return cmd
}

func readYAML(path string) (*yaml.Node, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: not a mapping", path)
	}
	return &doc, nil
}

func encodeYAML(doc *yaml.Node) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return b.Bytes(), enc.Close()
}

func clone(doc *yaml.Node) (*yaml.Node, error) {
	b, err := encodeYAML(doc)
	if err != nil {
		return nil, err
	}
	var out yaml.Node
	return &out, yaml.Unmarshal(b, &out)
}

// writeIfChanged leaves an unchanged file alone, so a second run touches
// nothing.
func writeIfChanged(path string, b []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, b) {
		return nil
	}
	return os.WriteFile(path, b, 0o644)
}

// get returns the value of key in mapping m, or nil.
func get(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// set replaces the value of key in mapping m, or appends the key.
func set(m *yaml.Node, key string, v *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			v.LineComment = m.Content[i+1].LineComment
			m.Content[i+1] = v
			return
		}
	}
	m.Content = append(m.Content, scalar(key), v)
}

// scalar is a plain scalar, typed by its value as if it had been typed
// in the file: 18080 is a number, 2s a string.
func scalar(v string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Value: v} }

func quoted(v string) *yaml.Node {
	n := scalar(v)
	n.Style = yaml.DoubleQuotedStyle
	return n
}

func flowMap(kv ...any) *yaml.Node {
	m := &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle}
	for i := 0; i < len(kv); i += 2 {
		m.Content = append(m.Content, scalar(kv[i].(string)), kv[i+1].(*yaml.Node))
	}
	return m
}

func flowSeq(items ...*yaml.Node) *yaml.Node {
	return &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle, Content: items}
}

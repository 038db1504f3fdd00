// Package engine runs the pipeline every command shares: spec -> model
// (catalog) -> secrets (state) -> backend artifacts -> files on disk.
// Backends plug in through the Backend interface declared here, where it is
// consumed.
package engine

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"text/template"

	"github.com/aipairpro/orchestrator/internal/catalog"
	"github.com/aipairpro/orchestrator/internal/diag"
	"github.com/aipairpro/orchestrator/internal/model"
	"github.com/aipairpro/orchestrator/internal/spec"
	"github.com/aipairpro/orchestrator/internal/state"
)

// Backend renders a deployment into the artifacts of one target.
type Backend interface {
	// Name is the target's name, e.g. "compose".
	Name() string
	// Render produces the target's files. It must be deterministic: the
	// same deployment and secrets give the same bytes.
	Render(ctx context.Context, d *model.Deployment, opts RenderOptions) (*Artifacts, error)
}

// RenderOptions are what a backend needs besides the deployment.
type RenderOptions struct {
	// OutDir is the absolute directory the artifacts are written to.
	OutDir string
	// StateDir is the absolute state directory (secrets live there).
	StateDir string
	// Secrets resolves secret values and templates over them.
	Secrets *Secrets
}

// Artifacts are a backend's output.
type Artifacts struct {
	// Files are written under OutDir; they never hold secret values.
	Files []model.File
	// StateFiles are written under StateDir with mode 0600; they are the
	// only files that may hold secret values.
	StateFiles []model.File
	// Environment holds values the target needs at apply time and that
	// must not be written anywhere (secret contents, keyed by the variable
	// name the files refer to). It lives only in this process's memory.
	Environment map[string]string
}

// RenderOptionsIn are the inputs of Render.
type RenderOptionsIn struct {
	Backend Backend
	Store   *state.Store
	OutDir  string
	// DryRun renders without writing anything (secrets are still created,
	// since they are state, not output).
	DryRun bool
}

// Result is what Render produced.
type Result struct {
	Deployment *model.Deployment
	Artifacts  *Artifacts
	// Written lists the output files that changed on disk, relative to OutDir.
	Written []string
	Secrets *Secrets
}

// Render builds the deployment for a loaded stack, makes sure its secrets
// exist, renders it with the backend and writes the files.
func Render(ctx context.Context, st *spec.Stack, in RenderOptionsIn) (*Result, diag.Diagnostics) {
	dep, ds := catalog.Build(st)
	if ds.HasErrors() {
		return nil, ds
	}
	outDir, err := filepath.Abs(in.OutDir)
	if err != nil {
		return nil, ds.Append(err)
	}
	secrets, err := NewSecrets(dep, in.Store)
	if err != nil {
		return nil, ds.Append(err)
	}
	arts, err := in.Backend.Render(ctx, dep, RenderOptions{OutDir: outDir, StateDir: in.Store.Dir(), Secrets: secrets})
	if err != nil {
		return nil, ds.Append(fmt.Errorf("render %s: %w", in.Backend.Name(), err))
	}
	res := &Result{Deployment: dep, Artifacts: arts, Secrets: secrets}
	if in.DryRun {
		return res, ds
	}
	for _, f := range arts.StateFiles {
		if err := in.Store.WriteFile(f.Path, f.Content); err != nil {
			return nil, ds.Append(err)
		}
	}
	for _, f := range arts.Files {
		changed, err := writeOutput(outDir, f)
		if err != nil {
			return nil, ds.Append(err)
		}
		if changed {
			res.Written = append(res.Written, f.Path)
		}
	}
	return res, ds
}

func writeOutput(outDir string, f model.File) (bool, error) {
	p := filepath.Join(outDir, filepath.FromSlash(f.Path))
	mode := fs.FileMode(f.Mode)
	if mode == 0 {
		mode = 0o644
	}
	if old, err := os.ReadFile(p); err == nil && bytes.Equal(old, f.Content) {
		if st, err := os.Stat(p); err == nil && st.Mode().Perm() == mode {
			return false, nil
		}
		return true, os.Chmod(p, mode)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return false, fmt.Errorf("create output directory: %w", err)
	}
	if err := state.WriteAtomic(p, f.Content, mode); err != nil {
		return false, fmt.Errorf("write %s: %w", p, err)
	}
	return true, nil
}

// Secrets resolves the deployment's secrets: generated ones from the state
// store (created on first use), derived ones by executing their templates.
type Secrets struct {
	dep     *model.Deployment
	store   *state.Store
	byName  map[string]model.Secret
	values  map[string]string
	derived map[string]bool
}

// NewSecrets makes sure every generated secret of the deployment exists.
func NewSecrets(dep *model.Deployment, store *state.Store) (*Secrets, error) {
	s := &Secrets{dep: dep, store: store, byName: map[string]model.Secret{}, values: map[string]string{}, derived: map[string]bool{}}
	for _, sec := range dep.Secrets {
		s.byName[sec.Name] = sec
	}
	for _, sec := range dep.Secrets {
		if _, err := s.Value(sec.Name); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// IsDerived reports whether the named secret is made from a template.
func (s *Secrets) IsDerived(name string) bool { return s.byName[name].Template != "" }

// Value returns a secret's value.
func (s *Secrets) Value(name string) (string, error) {
	if v, ok := s.values[name]; ok {
		return v, nil
	}
	sec, ok := s.byName[name]
	if !ok {
		return "", fmt.Errorf("secret %q is used but not declared by the catalog", name)
	}
	var v string
	var err error
	if sec.Template != "" {
		if s.derived[name] {
			return "", fmt.Errorf("secret %q refers to itself", name)
		}
		s.derived[name] = true
		v, err = s.Expand(sec.Template)
	} else {
		v, err = s.store.Secret(name, sec.Generate)
	}
	if err != nil {
		return "", err
	}
	s.values[name] = v
	return v, nil
}

// Expand executes a template over the secrets: {{ secret "name" }} gives a
// value, {{ publicURL "service" }} the URL of a routed service, .Domain and
// .Name the stack's domain and name. A value that lands inside another
// syntax goes through that syntax's encoder (see Encoders): a password in
// a URL through urlUserinfo, any value in a YAML file through yaml.
func (s *Secrets) Expand(text string) (string, error) {
	funcs := template.FuncMap{"secret": s.Value, "publicURL": s.publicURL}
	for name, fn := range Encoders {
		funcs[name] = fn
	}
	t, err := template.New("").Option("missingkey=error").Funcs(funcs).Parse(text)
	if err != nil {
		return "", fmt.Errorf("secret template: %w", err)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, struct{ Domain, Name string }{s.dep.Domain, s.dep.Name}); err != nil {
		return "", fmt.Errorf("secret template: %w", err)
	}
	return buf.String(), nil
}

func (s *Secrets) publicURL(service string) (string, error) {
	for _, r := range s.dep.Routes {
		if r.Service == service {
			return r.URL, nil
		}
	}
	return "", fmt.Errorf("no route for service %q", service)
}

// Values returns every generated secret value, for leak checks.
func (s *Secrets) Values() []string {
	var out []string
	for name, v := range s.values {
		if !s.IsDerived(name) {
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return out
}

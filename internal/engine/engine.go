// Package engine runs the pipeline every command shares: spec -> model
// (catalog) -> secrets (state) -> backend artifacts -> files on disk.
// Backends plug in through the Backend interface declared here, where it is
// consumed.
package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
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
	// DryRun renders without writing anything: no output files, no state
	// files, no new secrets. A missing secret gets a value that lives only
	// in this process's memory; Result.WouldGenerate names it.
	DryRun bool
	// ExistingVolumes returns which of the given volumes (the model's
	// names) exist on the target, each with the target's own name for it.
	// When set, Render refuses (DataAtRiskError) to generate a secret, or
	// to use one generated without this check, while a volume holding data
	// made with it exists (model.Secret.DataVolumes); the check runs only
	// when there is such a secret. Nil when there is no target to ask
	// (render): new secrets are then generated and stay marked unchecked
	// until a Render that can ask finds no such data.
	ExistingVolumes func(ctx context.Context, volumes []string) (map[string]string, error)
}

// Result is what Render produced.
type Result struct {
	Deployment *model.Deployment
	Artifacts  *Artifacts
	// Written lists the output files that changed on disk, relative to OutDir.
	Written []string
	Secrets *Secrets
	// Generated names the secrets this render generated and saved.
	Generated []string
	// WouldGenerate names the secrets a dry run found missing; the next
	// render that writes generates them.
	WouldGenerate []string
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
	known, err := checkNewSecrets(ctx, dep, in)
	var atRisk *DataAtRiskError
	if errors.As(err, &atRisk) {
		return nil, ds.Append(atRisk.Diagnostic())
	}
	if err != nil {
		return nil, ds.Append(err)
	}
	secrets, err := newSecrets(dep, in.Store, known, in.DryRun)
	if err != nil {
		return nil, ds.Append(err)
	}
	arts, err := in.Backend.Render(ctx, dep, RenderOptions{OutDir: outDir, StateDir: in.Store.Dir(), Secrets: secrets})
	if err != nil {
		return nil, ds.Append(fmt.Errorf("render %s: %w", in.Backend.Name(), err))
	}
	res := &Result{Deployment: dep, Artifacts: arts, Secrets: secrets, Generated: secrets.generated, WouldGenerate: secrets.ephemeral}
	if in.DryRun {
		return res, ds
	}
	if in.ExistingVolumes != nil {
		// Checked: no data of this stack was made with other values. Marks
		// left over a value restored from backup go too.
		if err := in.Store.MarkChecked(generatedNames(dep)...); err != nil {
			return nil, ds.Append(err)
		}
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

// writeOutput writes one rendered file under outDir: atomically, only
// when it changed, and never through a symbolic link or out of outDir.
func writeOutput(outDir string, f model.File) (bool, error) {
	mode := fs.FileMode(f.Mode)
	if mode == 0 {
		mode = 0o644
	}
	changed, err := state.WriteInside(outDir, filepath.FromSlash(f.Path), f.Content, mode, 0o755)
	if err != nil {
		return false, fmt.Errorf("write %s: %w", filepath.Join(outDir, filepath.FromSlash(f.Path)), err)
	}
	return changed, nil
}

// Secrets resolves the deployment's secrets: generated ones from the state
// store (created on first use), derived ones by executing their templates.
type Secrets struct {
	dep     *model.Deployment
	store   *state.Store
	byName  map[string]model.Secret
	values  map[string]string
	derived map[string]bool
	// dryRun makes up missing secrets in memory instead of saving them.
	dryRun bool
	// generated and ephemeral name the secrets made by this resolver:
	// saved, or (dry run) only in memory.
	generated, ephemeral []string
}

// NewSecrets makes sure every generated secret of the deployment exists.
func NewSecrets(dep *model.Deployment, store *state.Store) (*Secrets, error) {
	return newSecrets(dep, store, nil, false)
}

// newSecrets resolves every secret, starting from the values known
// already; under dryRun a missing one is made up in memory, not saved.
func newSecrets(dep *model.Deployment, store *state.Store, known map[string]string, dryRun bool) (*Secrets, error) {
	s := &Secrets{dep: dep, store: store, byName: map[string]model.Secret{}, values: map[string]string{}, derived: map[string]bool{}, dryRun: dryRun}
	for name, v := range known {
		s.values[name] = v
	}
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
		v, err = s.lookupOrGenerate(sec)
	}
	if err != nil {
		return "", err
	}
	s.values[name] = v
	return v, nil
}

// lookupOrGenerate reads a generated secret, or makes a new one: saved,
// or under a dry run only in memory.
func (s *Secrets) lookupOrGenerate(sec model.Secret) (string, error) {
	v, ok, err := s.store.Lookup(sec.Name, sec.Generate)
	if err != nil || ok {
		return v, err
	}
	if s.dryRun {
		s.ephemeral = append(s.ephemeral, sec.Name)
		return s.store.NewValue(sec.Generate)
	}
	s.generated = append(s.generated, sec.Name)
	return s.store.Generate(sec.Name, sec.Generate)
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

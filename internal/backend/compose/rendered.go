package compose

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/dotenv"
	"github.com/compose-spec/compose-go/v2/types"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/compose/v5/pkg/api"
	"github.com/moby/moby/client"

	"github.com/aipairpro/orchestrator/internal/engine"
)

// Rendered is a rendering held in memory, not written to disk (a dry run):
// what plan loads, so that it reads the state directory and writes
// nothing in it.
type Rendered struct {
	// Dir is the absolute render directory the files belong in.
	Dir string
	// StateDir is the absolute state directory.
	StateDir string
	// Artifacts are the backend's output for Dir and StateDir.
	Artifacts *engine.Artifacts
}

// LoadRendered loads a rendering held in memory exactly as Load loads the
// same files from disk: compose's own loader reads the compose file from a
// private temporary copy, with Dir as the project's working directory, and
// the env files it names come from memory. Nothing is written under Dir or
// StateDir. The project is the same, configuration hashes included, as
// Load gives once the files are written.
func (t *Target) LoadRendered(ctx context.Context, r Rendered, project string) (*types.Project, error) {
	var composeFile []byte
	for _, f := range r.Artifacts.Files {
		if f.Path == ComposeFile {
			composeFile = f.Content
		}
	}
	if composeFile == nil {
		return nil, fmt.Errorf("the rendering has no %s", ComposeFile)
	}
	tmp, err := os.CreateTemp("", "orchestrator-dry-run-*.yml")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(composeFile)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	p, err := t.compose.LoadProject(ctx, api.ProjectLoadOptions{
		ProjectName: project,
		ConfigPaths: []string{tmp.Name()},
		WorkingDir:  r.Dir,
		// Env files are resolved below, from memory.
		ProjectOptionsFns: []cli.ProjectOptionsFn{cli.WithoutEnvironmentResolution},
	})
	if err != nil {
		return nil, err
	}
	// Where the file will be: what Load records.
	real := filepath.Join(r.Dir, ComposeFile)
	p.ComposeFiles = []string{real}
	envFiles := map[string][]byte{}
	for _, f := range r.Artifacts.StateFiles {
		envFiles[filepath.Join(r.StateDir, filepath.FromSlash(f.Path))] = f.Content
	}
	for name, s := range p.Services {
		if s.CustomLabels != nil {
			s.CustomLabels[api.ConfigFilesLabel] = real
		}
		if err := resolveEnvironment(p, &s, envFiles); err != nil {
			return nil, fmt.Errorf("service %s: %w", name, err)
		}
		p.Services[name] = s
	}
	if len(r.Artifacts.Environment) > 0 {
		if p.Environment == nil {
			p.Environment = types.Mapping{}
		}
		for k, v := range r.Artifacts.Environment {
			p.Environment[k] = v
		}
	}
	return p, nil
}

// resolveEnvironment is compose-go's Project.WithServicesEnvironmentResolved
// for one service, with the env files' contents taken from memory: the
// service's variables resolved from the project's environment, then each
// env file parsed by compose-go's own parser, with the service's own
// variables winning.
func resolveEnvironment(p *types.Project, s *types.ServiceConfig, files map[string][]byte) error {
	s.Environment = s.Environment.Resolve(p.Environment.Resolve)
	environment := s.Environment.ToMapping()
	for _, ef := range s.EnvFiles {
		content, ok := files[ef.Path]
		if !ok {
			if ef.Required {
				return fmt.Errorf("env file %s is not part of the rendering", ef.Path)
			}
			continue
		}
		lookup := func(k string) (string, bool) {
			// The project's environment has precedence, as in compose-go.
			if v, ok := p.Environment.Resolve(k); ok {
				return v, true
			}
			if v, ok := s.Environment[k]; ok && v != nil {
				return *v, true
			}
			return "", false
		}
		if err := dotenv.ParseWithFormat(bytes.NewReader(content), ef.Path, environment, lookup, ef.Format); err != nil {
			return err
		}
	}
	s.Environment = environment.ToMappingWithEquals().OverrideBy(s.Environment)
	return nil
}

// ExistingVolumes returns which of the named volumes of project exist on
// the engine, keyed by the name in the compose file, with the engine's
// name (<project>_<name>, compose's naming). A volume of that name made by
// hand (a restored backup) counts: compose would use it.
func (t *Target) ExistingVolumes(ctx context.Context, project string, names []string) (map[string]string, error) {
	out := map[string]string{}
	for _, n := range names {
		full := project + "_" + n
		_, err := t.Client().VolumeInspect(ctx, full, client.VolumeInspectOptions{})
		switch {
		case err == nil:
			out[n] = full
		case cerrdefs.IsNotFound(err):
		default:
			return nil, fmt.Errorf("inspect volume %s: %w", full, err)
		}
	}
	return out, nil
}

// Package compose is the Phase 1 backend: it renders a deployment as a
// docker-compose.yml built with compose-go's own types, plus the files the
// services mount. Secret values go only to 0600 files in the state
// directory, which the compose file references.
package compose

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/aipairpro/orchestrator/internal/engine"
	"github.com/aipairpro/orchestrator/internal/model"
)

// ComposeFile is the name of the rendered compose file.
const ComposeFile = "docker-compose.yml"

// LabelComponent marks each container with the component it belongs to.
const LabelComponent = "dev.orchestrator.component"

// LabelInputs carries a digest of the contents a service reads from files:
// mounted secrets and configs, and its env file. Compose's configuration
// hash covers only their names, so without this label a changed password
// or init script would not recreate the container (docker/compose#11900).
const LabelInputs = "dev.orchestrator.inputs-digest"

// Backend renders Phase 1.
type Backend struct{}

var _ engine.Backend = (*Backend)(nil)

// New returns the compose backend.
func New() *Backend { return &Backend{} }

// Name returns "compose".
func (*Backend) Name() string { return "compose" }

const header = "# Rendered by orchestrator. Do not edit: change stack.yaml and render again.\n" +
	"# Secret values are not in this file: it references 0600 files in the state directory.\n"

// Render builds the compose project and its files.
func (b *Backend) Render(_ context.Context, d *model.Deployment, opts engine.RenderOptions) (*engine.Artifacts, error) {
	stateRel, err := filepath.Rel(opts.OutDir, opts.StateDir)
	if err != nil {
		return nil, fmt.Errorf("state directory %s relative to %s: %w", opts.StateDir, opts.OutDir, err)
	}
	stateRel = filepath.ToSlash(stateRel)
	r := &renderer{d: d, opts: opts, stateRel: stateRel, arts: &engine.Artifacts{}}
	project, err := r.project()
	if err != nil {
		return nil, err
	}
	y, err := marshal(project)
	if err != nil {
		return nil, fmt.Errorf("marshal compose file: %w", err)
	}
	r.arts.Files = append(r.arts.Files, model.File{Path: ComposeFile, Content: append([]byte(header), y...), Mode: 0o644})
	r.arts.Files = append(r.arts.Files, d.Files...)
	sort.Slice(r.arts.Files, func(i, j int) bool { return r.arts.Files[i].Path < r.arts.Files[j].Path })
	sort.Slice(r.arts.StateFiles, func(i, j int) bool { return r.arts.StateFiles[i].Path < r.arts.StateFiles[j].Path })
	return r.arts, nil
}

type renderer struct {
	d        *model.Deployment
	opts     engine.RenderOptions
	stateRel string
	arts     *engine.Artifacts
}

// statePath is how the compose file names a file in the state directory:
// relative to the output directory, so the two can move together. A '$'
// in either directory's path is escaped: compose interpolates paths too.
func (r *renderer) statePath(parts ...string) string {
	return escape(r.stateRel + "/" + strings.Join(parts, "/"))
}

func (r *renderer) project() (*types.Project, error) {
	p := &types.Project{
		Name:     r.d.Name,
		Services: types.Services{},
		Networks: types.Networks{},
		Volumes:  types.Volumes{},
		Secrets:  types.Secrets{},
		Configs:  types.Configs{},
	}
	// Our label on every network and volume (containers carry
	// LabelComponent): a resource with the project's compose label but
	// without ours belongs to someone else, and is never touched (see
	// Foreign).
	for _, n := range r.d.Networks {
		p.Networks[n.Name] = types.NetworkConfig{Internal: n.Internal, Labels: types.Labels{LabelStack: r.d.Name}}
	}
	for _, v := range r.d.Volumes {
		p.Volumes[v.Name] = types.VolumeConfig{Labels: types.Labels{LabelStack: r.d.Name}}
	}
	// Secrets and configs reach containers through the engine's API, not
	// as bind mounts of this machine's files: compose copies a secret whose
	// source is `environment:` and a config with inline `content:` into the
	// container before it starts. So they work when the engine is on
	// another machine (ssh://, tcp://), where a path of ours does not
	// exist. The secret's value is never in the file: it is handed to
	// compose in memory at apply time (Artifacts.Environment), never put in
	// this process's environment or a container's.
	if r.arts.Environment == nil {
		r.arts.Environment = map[string]string{}
	}
	for _, s := range r.d.Secrets {
		v, err := r.opts.Secrets.Value(s.Name)
		if err != nil {
			return nil, err
		}
		name := SecretVariable(s.Name)
		p.Secrets[s.Name] = types.SecretConfig{Environment: name}
		r.arts.Environment[name] = v
	}
	for _, f := range r.d.Files {
		p.Configs[configName(f.Path)] = types.ConfigObjConfig{Content: escape(string(f.Content))}
	}
	used := map[string]bool{}
	for _, s := range r.d.Services {
		svc, err := r.service(s, used)
		if err != nil {
			return nil, err
		}
		p.Services[s.Name] = svc
	}
	// Declare only the secrets some service mounts; env-only secrets reach
	// containers through env files. The pass-through key is no file: Load
	// keys the digest of pass-through values with it.
	for name := range p.Secrets {
		if !used[name] {
			delete(p.Secrets, name)
			if name != model.PassThroughKey {
				delete(r.arts.Environment, SecretVariable(name))
			}
		}
	}
	// Values passed through from the environment of whoever applies, as
	// files: compose reads them from that environment, as for `environment:`.
	for _, s := range r.d.Services {
		for _, n := range s.PassFiles {
			p.Secrets[PassThroughSecret(n)] = types.SecretConfig{Environment: n}
		}
	}
	if len(p.Secrets) == 0 {
		p.Secrets = nil
	}
	if len(p.Configs) == 0 {
		p.Configs = nil
	}
	return p, nil
}

// PassThroughSecret is the compose secret that carries the variable name
// from the environment of whoever applies (a spec's secrets:).
func PassThroughSecret(name string) string { return passThroughPrefix + name }

const passThroughPrefix = "pass-through-"

// SecretVariable is the name under which the compose file refers to a
// secret's value (a secret's `environment:` source), e.g.
// ORCHESTRATOR_SECRET_KESTRA_APPLICATION_YML for "kestra-application.yml".
func SecretVariable(secret string) string {
	return "ORCHESTRATOR_SECRET_" + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(secret))
}

func configName(path string) string {
	return strings.NewReplacer("/", "-", ".", "-").Replace(path)
}

// escape protects literal '$' from compose's variable interpolation.
func escape(s string) string { return strings.ReplaceAll(s, "$", "$$") }

func escapeAll(in []string) []string {
	if in == nil {
		return nil
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = escape(s)
	}
	return out
}

func (r *renderer) service(s model.Service, usedSecrets map[string]bool) (types.ServiceConfig, error) {
	svc := types.ServiceConfig{Name: s.Name}
	svc.Labels = types.Labels{LabelComponent: s.Component}
	// Bounded logs: an unrotated json-file log fills a VPS disk.
	svc.Logging = &types.LoggingConfig{Driver: "json-file", Options: types.Options{"max-size": "10m", "max-file": "3"}}
	svc.Image = s.Image
	svc.Command = types.ShellCommand(escapeAll(s.Command))
	svc.Entrypoint = types.ShellCommand(escapeAll(s.Entrypoint))
	svc.User = s.User
	if s.OneShot {
		svc.Restart = types.RestartPolicyNo
	} else {
		svc.Restart = types.RestartPolicyUnlessStopped
	}
	if len(s.Env) > 0 || len(s.PassEnv) > 0 {
		svc.Environment = types.MappingWithEquals{}
		for k, v := range s.Env {
			v := escape(v)
			svc.Environment[k] = &v
		}
		// No value: compose takes it from the environment of whoever runs
		// `up`, so secret values never touch a rendered file.
		for _, k := range s.PassEnv {
			svc.Environment[k] = nil
		}
	}
	if len(s.SecretEnv) > 0 {
		content, err := r.envFile(s.SecretEnv)
		if err != nil {
			return svc, fmt.Errorf("service %s: %w", s.Name, err)
		}
		path := "compose/env/" + s.Name + ".env"
		r.arts.StateFiles = append(r.arts.StateFiles, model.File{Path: path, Content: content, Mode: 0o600})
		svc.EnvFiles = []types.EnvFile{{Path: r.statePath(path), Required: types.OptOut(true)}}
	}
	for _, n := range s.PassFiles {
		svc.Secrets = append(svc.Secrets, types.ServiceSecretConfig{Source: PassThroughSecret(n), Target: "/run/secrets/" + n})
	}
	for _, m := range s.SecretMounts {
		usedSecrets[m.Secret] = true
		sc := types.ServiceSecretConfig{Source: m.Secret, Target: m.Target, UID: m.UID}
		if m.Mode != 0 {
			mode := types.FileMode(m.Mode)
			sc.Mode = &mode
		}
		svc.Secrets = append(svc.Secrets, sc)
	}
	for _, m := range s.FileMounts {
		svc.Configs = append(svc.Configs, types.ServiceConfigObjConfig{Source: configName(m.File), Target: m.Target})
	}
	digest, err := r.inputsDigest(s)
	if err != nil {
		return svc, fmt.Errorf("service %s: %w", s.Name, err)
	}
	if digest != "" {
		svc.Labels[LabelInputs] = digest
	}
	for _, pb := range s.Publish {
		svc.Ports = append(svc.Ports, types.ServicePortConfig{
			HostIP: pb.HostIP, Published: fmt.Sprint(pb.Host), Target: uint32(pb.Target), Protocol: pb.Protocol, Mode: "ingress",
		})
	}
	for _, v := range s.Volumes {
		switch {
		case v.Volume != "":
			svc.Volumes = append(svc.Volumes, types.ServiceVolumeConfig{Type: types.VolumeTypeVolume, Source: v.Volume, Target: v.Target, ReadOnly: v.ReadOnly})
		case v.Scratch:
			svc.Volumes = append(svc.Volumes, types.ServiceVolumeConfig{Type: types.VolumeTypeTmpfs, Target: v.Target, ReadOnly: v.ReadOnly})
		default:
			svc.Volumes = append(svc.Volumes, types.ServiceVolumeConfig{Type: types.VolumeTypeBind, Source: v.HostPath, Target: v.Target, ReadOnly: v.ReadOnly})
		}
	}
	if s.Isolated {
		svc.NetworkMode = "none"
	}
	if len(s.Networks) > 0 {
		svc.Networks = map[string]*types.ServiceNetworkConfig{}
		for _, n := range s.Networks {
			svc.Networks[n] = nil
		}
	}
	if len(s.DependsOn) > 0 {
		svc.DependsOn = types.DependsOnConfig{}
		for _, dep := range s.DependsOn {
			svc.DependsOn[dep.Service] = types.ServiceDependency{Condition: string(dep.Condition), Required: true}
		}
	}
	if h := s.Health; h != nil {
		svc.HealthCheck = healthcheck(h)
	}
	deploy := &types.DeployConfig{}
	if s.Replicas != 1 {
		n := s.Replicas
		deploy.Replicas = &n
	}
	if s.MemoryBytes > 0 || s.CPUs > 0 {
		deploy.Resources.Limits = &types.Resource{MemoryBytes: types.UnitBytes(s.MemoryBytes), NanoCPUs: types.NanoCPUs(s.CPUs)}
	}
	if deploy.Replicas != nil || deploy.Resources.Limits != nil {
		svc.Deploy = deploy
	}
	return svc, nil
}

// inputsDigest hashes, in a fixed order, every file content the service
// reads. It reveals nothing of the values: a SHA-256 of high-entropy
// secrets. Empty when the service reads no such files.
func (r *renderer) inputsDigest(s model.Service) (string, error) {
	var parts []string
	for _, m := range s.SecretMounts {
		v, err := r.opts.Secrets.Value(m.Secret)
		if err != nil {
			return "", err
		}
		parts = append(parts, "secret "+m.Secret+"\x00"+v)
	}
	for _, m := range s.FileMounts {
		for _, f := range r.d.Files {
			if f.Path == m.File {
				parts = append(parts, "file "+f.Path+"\x00"+string(f.Content))
			}
		}
	}
	if len(s.SecretEnv) > 0 {
		env, err := r.envFile(s.SecretEnv)
		if err != nil {
			return "", err
		}
		parts = append(parts, "env\x00"+string(env))
	}
	return engine.InputsDigest(parts), nil
}

func healthcheck(h *model.Healthcheck) *types.HealthCheckConfig {
	if h.Disable {
		return &types.HealthCheckConfig{Disable: true}
	}
	dur := func(sec int) *types.Duration {
		if sec <= 0 {
			return nil
		}
		d := types.Duration(int64(sec) * 1e9)
		return &d
	}
	retries := uint64(h.Retries)
	hc := &types.HealthCheckConfig{
		Test:        types.HealthCheckTest(escapeAll(h.Test)),
		Interval:    dur(h.IntervalSec),
		Timeout:     dur(h.TimeoutSec),
		StartPeriod: dur(h.StartSec),
	}
	if h.Retries > 0 {
		hc.Retries = &retries
	}
	return hc
}

// envFile writes KEY='value' lines: single quotes make compose take the
// value literally, with no interpolation.
func (r *renderer) envFile(env map[string]string) ([]byte, error) {
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	sb.WriteString("# Rendered by orchestrator from the secret state. Holds secrets: keep it 0600.\n")
	for _, k := range keys {
		v, err := r.opts.Secrets.Expand(env[k])
		if err != nil {
			return nil, err
		}
		q, err := envFileValue(v)
		if err != nil {
			return nil, fmt.Errorf("value of %s: %w", k, err)
		}
		fmt.Fprintf(&sb, "%s=%s\n", k, q)
	}
	return []byte(sb.String()), nil
}

// envFileValue quotes v for compose's env file parser (compose-go dotenv)
// so that it reads back as exactly v, with no interpolation: in single
// quotes when v has neither a quote nor a backslash (taken literally),
// else in double quotes with '\\', '"' and '$' escaped (`\$` reads as a
// literal '$'). Control characters cannot be carried and are refused;
// state.SecretValue keeps them out of the secret state.
func envFileValue(v string) (string, error) {
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return "", fmt.Errorf("control character %U cannot be written to an env file", r)
		}
	}
	if !strings.ContainsAny(v, "'\\") {
		return "'" + v + "'", nil
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, `$`, `\$`).Replace(v) + `"`, nil
}

package compose

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/docker/cli/cli/command"
	cliflags "github.com/docker/cli/cli/flags"
	"github.com/docker/compose/v5/cmd/display"
	"github.com/docker/compose/v5/pkg/api"
	"github.com/docker/compose/v5/pkg/compose"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/aipairpro/orchestrator/internal/model"
)

// Target applies rendered Phase 1 files to a Docker engine through the
// Docker Compose SDK: the real compose engine, the same convergence as
// `docker compose up`.
type Target struct {
	cli     *command.DockerCli
	compose api.Compose
	host    string
	// Declined lists what compose asked to do and was refused (recreating
	// a volume, which would lose its data).
	Declined []string
}

// TargetOptions configure the connection and the progress display.
type TargetOptions struct {
	// Host is the Docker host (unix://, tcp://, ssh://). Empty means
	// DOCKER_HOST or the current docker context, as for the docker CLI.
	Host string
	// Progress is auto, tty, plain, json or quiet, as for compose.
	Progress string
	// Out receives progress; it should be stderr.
	Out io.Writer
	// IsTTY says whether Out is a terminal (for Progress auto).
	IsTTY bool
}

// NewTarget connects to the engine. ssh:// hosts go through the docker
// CLI's connection helper (the system's ssh client).
func NewTarget(ctx context.Context, opts TargetOptions) (*Target, error) {
	dockerCLI, err := command.NewDockerCli(command.WithOutputStream(opts.Out), command.WithErrorStream(opts.Out))
	if err != nil {
		return nil, err
	}
	co := cliflags.NewClientOptions()
	if opts.Host != "" {
		co.Hosts = []string{opts.Host}
	}
	if err := dockerCLI.Initialize(co); err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	var events api.EventProcessor
	switch mode := opts.Progress; {
	case mode == "quiet":
		events = display.Quiet()
	case mode == "json":
		events = display.JSON(opts.Out)
	case mode == "tty" || mode == "auto" && opts.IsTTY:
		events = display.Full(opts.Out, opts.Out, true)
	default:
		events = display.Plain(opts.Out)
	}
	t := &Target{cli: dockerCLI, host: dockerCLI.DockerEndpoint().Host}
	svc, err := compose.NewComposeService(dockerCLI,
		compose.WithStreams(opts.Out, opts.Out, nil),
		compose.WithEventProcessor(events),
		// Compose asks before it recreates a volume whose configuration
		// diverged, which destroys its data. The answer here is always no:
		// data is deleted only by `down --volumes`.
		compose.WithPrompt(func(message string, _ bool) (bool, error) {
			t.Declined = append(t.Declined, message)
			return false, nil
		}),
	)
	if err != nil {
		return nil, err
	}
	t.compose = svc
	return t, nil
}

// Host returns the engine's address, for messages.
func (t *Target) Host() string { return t.host }

// Client returns the engine's API client.
func (t *Target) Client() client.APIClient { return t.cli.Client() }

// Load reads the rendered compose file exactly as `docker compose` would,
// then hands compose the values that the file names but must not hold
// (secrets, from engine.Artifacts.Environment). They go into the project's
// own environment map, which compose consults for `environment:` secrets;
// this process's environment, and so any program it starts (ssh), never
// sees them.
func (t *Target) Load(ctx context.Context, dir, project string, values map[string]string) (*types.Project, error) {
	p, err := t.compose.LoadProject(ctx, api.ProjectLoadOptions{
		ProjectName: project,
		ConfigPaths: []string{filepath.Join(dir, ComposeFile)},
		WorkingDir:  dir,
	})
	if err != nil {
		return nil, err
	}
	if len(values) > 0 {
		if p.Environment == nil {
			p.Environment = types.Mapping{}
		}
		for k, v := range values {
			p.Environment[k] = v
		}
	}
	return p, nil
}

// LabelPassThrough carries an HMAC of the values a service gets as files
// from the environment of whoever applies (a spec's secrets:). Compose's
// configuration hash covers a secret's name, not its content, and these
// values are not known when the files are rendered: set here, from the
// same environment compose reads them from, the label makes a changed
// value recreate exactly the services that read it. Keyed with a secret of
// the state (model.PassThroughKey), so the label reveals nothing of a
// short value to who can read labels.
const LabelPassThrough = "dev.orchestrator.pass-through-digest"

// labelPassThrough sets LabelPassThrough on every service that mounts a
// pass-through value; the key is in the project's environment, where Load
// (and a rendering loaded from memory) put the values the files name.
// Plan, Up and Applied call it, whichever way the project was loaded; it is
// idempotent.
func labelPassThrough(p *types.Project) {
	key := p.Environment[SecretVariable(model.PassThroughKey)]
	if key == "" {
		return
	}
	for name, svc := range p.Services {
		var parts []string
		for _, ref := range svc.Secrets {
			if sec, ok := p.Secrets[ref.Source]; ok && strings.HasPrefix(ref.Source, passThroughPrefix) {
				parts = append(parts, sec.Environment+"\x00"+p.Environment[sec.Environment])
			}
		}
		if len(parts) == 0 {
			continue
		}
		sort.Strings(parts)
		mac := hmac.New(sha256.New, []byte(key))
		for _, part := range parts {
			mac.Write([]byte(part))
			mac.Write([]byte{0})
		}
		if svc.Labels == nil {
			svc.Labels = types.Labels{}
		}
		svc.Labels[LabelPassThrough] = "hmac-sha256:" + hex.EncodeToString(mac.Sum(nil))
		p.Services[name] = svc
	}
}

// Up converges the engine to the project and waits until every service is
// healthy (one-shot services: completed). Unchanged containers are left
// alone, so a second Up is a no-op.
func (t *Target) Up(ctx context.Context, p *types.Project, timeout time.Duration) error {
	labelPassThrough(p)
	return t.compose.Up(ctx, p, api.UpOptions{
		Create: api.CreateOptions{
			RemoveOrphans: true,
			// Keep anonymous volumes across recreation, as `docker compose
			// up` does (unless -V): their data would otherwise be orphaned.
			Inherit:              true,
			Recreate:             api.RecreateDiverged,
			RecreateDependencies: api.RecreateDiverged,
		},
		Start: api.StartOptions{Project: p, Wait: true, WaitTimeout: timeout},
	})
}

// Down removes the project's containers and networks by its label; volumes
// only when asked. Compose goes by its project label alone, so Down first
// refuses when anything labelled so was not made by orchestrator (Foreign).
func (t *Target) Down(ctx context.Context, project string, volumes bool) error {
	foreign, err := t.Foreign(ctx, project)
	if err != nil {
		return err
	}
	if err := ForeignError("down", foreign); err != nil {
		return err
	}
	return t.compose.Down(ctx, project, api.DownOptions{RemoveOrphans: true, Volumes: volumes})
}

// containers lists the project's service containers, running or not.
func (t *Target) containers(ctx context.Context, project string) ([]container.Summary, error) {
	res, err := t.Client().ContainerList(ctx, client.ContainerListOptions{
		All: true,
		// Like compose: only containers it made for a service carry the
		// config-hash label (hook runners and strays do not). Only ours:
		// another project's of the same name is Foreign.
		Filters: make(client.Filters).Add("label", api.ProjectLabel+"="+project, api.ConfigHashLabel, LabelComponent),
	})
	if err != nil {
		return nil, err
	}
	var out []container.Summary
	for _, c := range res.Items {
		if c.Labels[api.OneoffLabel] == "True" {
			continue
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return containerName(out[i]) < containerName(out[j]) })
	return out, nil
}

func containerName(c container.Summary) string {
	if len(c.Names) > 0 {
		return strings.TrimPrefix(c.Names[0], "/")
	}
	return c.ID[:12]
}

// ServiceStatus is one container's state, for `status` and for failure
// reports. Restarts counts the engine's restarts of the container (its
// restart policy at work) since it was created or last started by hand.
// OK says the container is where the spec wants it: running, neither
// unhealthy nor starting, and not restarted by the engine within the last
// DefaultStabilityWindow (a crash loop between two crashes); a one-shot:
// completed.
type ServiceStatus struct {
	Service   string   `json:"service"`
	Container string   `json:"container"`
	Image     string   `json:"image"`
	State     string   `json:"state"`
	Health    string   `json:"health,omitempty"`
	ExitCode  int      `json:"exit_code"`
	Restarts  int      `json:"restarts"`
	OK        bool     `json:"ok"`
	Ports     []string `json:"ports,omitempty"`
	StartedAt string   `json:"started_at,omitempty"`
	Uptime    string   `json:"uptime,omitempty"`
}

// Status reports every container of the project.
func (t *Target) Status(ctx context.Context, project string) ([]ServiceStatus, error) {
	cs, err := t.containers(ctx, project)
	if err != nil {
		return nil, err
	}
	out := make([]ServiceStatus, 0, len(cs))
	var now func() time.Time
	for _, c := range cs {
		insp, err := t.Client().ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
		if err != nil {
			return nil, err
		}
		o := observationOf(insp.Container)
		st := ServiceStatus{Service: c.Labels[api.ServiceLabel], Container: containerName(c), Image: c.Image, State: string(o.status), Restarts: o.restarts}
		if o.status == "" {
			st.State = string(c.State)
		}
		if o.restarts > 0 && o.status == container.StateRunning && now == nil {
			if now, err = t.engineClock(ctx); err != nil {
				return nil, err
			}
		}
		st.OK = o.ok(now, DefaultStabilityWindow)
		if s := insp.Container.State; s != nil {
			st.ExitCode = s.ExitCode
			if s.Health != nil {
				st.Health = string(s.Health.Status)
			}
			// Docker keeps Running set while it waits to restart a
			// crashed container, whose StartedAt is then stale.
			if s.Running && !s.Restarting {
				st.StartedAt = s.StartedAt
				if started, err := time.Parse(time.RFC3339Nano, s.StartedAt); err == nil {
					st.Uptime = time.Since(started).Round(time.Second).String()
				}
			}
		}
		seen := map[string]bool{}
		for _, p := range c.Ports {
			if p.PublicPort == 0 {
				continue
			}
			ip := ""
			if p.IP.IsValid() && !p.IP.IsUnspecified() {
				ip = p.IP.String() + ":"
			}
			// IPv4 and IPv6 bindings of the same port are one port to people.
			if s := fmt.Sprintf("%s%d->%d/%s", ip, p.PublicPort, p.PrivatePort, p.Type); !seen[s] {
				seen[s] = true
				st.Ports = append(st.Ports, s)
			}
		}
		sort.Strings(st.Ports)
		out = append(out, st)
	}
	return out, nil
}

// Failure explains why a service is not up.
type Failure struct {
	Service   string
	Container string
	State     string
	Health    string
	ExitCode  int
	Restarts  int // the engine's restarts of the container
	LastProbe string
	LastLogs  []string
}

// Starting reports whether the service is running and its healthcheck has
// not decided yet (for example just after the engine restarted it): worth
// waiting for, not yet a failure.
func (f Failure) Starting() bool {
	return f.State == string(container.StateRunning) && f.Health == string(container.Starting)
}

// Explain collects, for every service that is neither healthy nor (for a
// one-shot) completed, its state, last healthcheck output and last logs.
func (t *Target) Explain(ctx context.Context, p *types.Project) ([]Failure, error) {
	cs, err := t.containers(ctx, p.Name)
	if err != nil {
		return nil, err
	}
	var out []Failure
	for _, c := range cs {
		svc, ok := p.Services[c.Labels[api.ServiceLabel]]
		if !ok {
			continue
		}
		insp, err := t.Client().ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
		if err != nil {
			return nil, err
		}
		s := insp.Container.State
		if s == nil {
			continue
		}
		f := Failure{Service: svc.Name, Container: containerName(c), State: string(s.Status), ExitCode: s.ExitCode, Restarts: insp.Container.RestartCount}
		oneShot := svc.Restart == types.RestartPolicyNo
		// Not s.Running: Docker keeps it set while a crashed container
		// waits to be restarted ("restarting"), healthcheck or not. A
		// running container that restarts between two looks is Settle's
		// to catch.
		running := s.Status == container.StateRunning
		switch {
		case oneShot && s.Status == container.StateExited && s.ExitCode == 0:
			continue
		case s.Health != nil:
			f.Health = string(s.Health.Status)
			if s.Health.Status == container.Healthy && running {
				continue
			}
			if n := len(s.Health.Log); n > 0 {
				f.LastProbe = strings.TrimSpace(s.Health.Log[n-1].Output)
			}
		case running && (svc.HealthCheck == nil || svc.HealthCheck.Disable):
			continue
		}
		f.LastLogs = t.tail(ctx, c.ID, 15)
		out = append(out, f)
	}
	return out, nil
}

func (t *Target) tail(ctx context.Context, id string, n int) []string {
	rc, err := t.Client().ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: fmt.Sprint(n)})
	if err != nil {
		return []string{"(logs unavailable: " + err.Error() + ")"}
	}
	defer rc.Close()
	var buf strings.Builder
	if _, err := stdcopy.StdCopy(&buf, &buf, rc); err != nil && !errors.Is(err, io.EOF) {
		return []string{"(logs unreadable: " + err.Error() + ")"}
	}
	lines := strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
	if len(lines) == 1 && lines[0] == "" {
		return nil
	}
	return lines
}

// ServerInfo is what preflight needs to know about the engine.
type ServerInfo struct {
	Version    string
	APIVersion string
	MemTotal   int64
	NCPU       int
	RootDir    string
	// Local is true when the engine runs on this machine (a unix socket),
	// so the host's /proc and filesystems can be read directly.
	Local bool
}

// Info asks the engine about itself.
func (t *Target) Info(ctx context.Context) (ServerInfo, error) {
	res, err := t.Client().Info(ctx, client.InfoOptions{})
	if err != nil {
		return ServerInfo{}, err
	}
	i := res.Info
	local := strings.HasPrefix(t.host, "unix://")
	if local {
		// A unix socket of a remote machine is possible (ssh tunnels); the
		// engine's root dir must exist here too for the checks to be ours.
		if _, err := os.Stat(i.DockerRootDir); err != nil {
			local = false
		}
	}
	return ServerInfo{Version: i.ServerVersion, APIVersion: t.Client().ClientVersion(), MemTotal: i.MemTotal, NCPU: i.NCPU, RootDir: i.DockerRootDir, Local: local}, nil
}

// Volumes lists the project's volumes on the engine.
func (t *Target) Volumes(ctx context.Context, project string) ([]string, error) {
	res, err := t.Client().VolumeList(ctx, client.VolumeListOptions{Filters: make(client.Filters).Add("label", api.ProjectLabel+"="+project)})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, v := range res.Items {
		out = append(out, v.Name)
	}
	sort.Strings(out)
	return out, nil
}

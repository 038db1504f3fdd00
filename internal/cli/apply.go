package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/aipairpro/orchestrator/internal/backend/compose"
	"github.com/aipairpro/orchestrator/internal/engine"
	"github.com/aipairpro/orchestrator/internal/preflight"
	"github.com/aipairpro/orchestrator/internal/spec"
	"github.com/aipairpro/orchestrator/internal/state"
)

// phase1Flags are the flags every Phase 1 command shares.
type phase1Flags struct {
	Phase    int
	OutDir   string
	Host     string
	Progress string
}

func (pf *phase1Flags) register(cmd *cobra.Command, progress bool) {
	fl := cmd.Flags()
	fl.IntVar(&pf.Phase, "phase", 1, "target: 1 = docker compose on one host (phase 2 is not in this version)")
	fl.StringVarP(&pf.OutDir, "out", "o", "", "directory of the rendered files (default rendered/phase1 beside the spec)")
	fl.StringVarP(&pf.Host, "host", "H", "", "Docker host, overriding phase1.host, DOCKER_HOST and the docker context")
	if progress {
		fl.StringVar(&pf.Progress, "progress", "auto", "progress output: auto, tty, plain, json or quiet")
	}
}

func (pf *phase1Flags) check() error {
	if pf.Phase != 1 {
		return usageError{fmt.Errorf("invalid --phase %d: only phase 1 (docker compose) can be applied in this version", pf.Phase)}
	}
	switch pf.Progress {
	case "", "auto", "tty", "plain", "json", "quiet":
	default:
		return usageError{fmt.Errorf("invalid --progress %q: use auto, tty, plain, json or quiet", pf.Progress)}
	}
	return nil
}

// phase1 is a loaded stack, rendered and connected to its engine.
type phase1 struct {
	stack   *spec.Stack
	store   *state.Store
	render  *engine.Result
	target  *compose.Target
	project *types.Project
	outDir  string
}

// openPhase1 loads the spec, renders it (the same code path as `render`),
// connects to the engine and loads the rendered project the way compose
// does. What is applied is exactly what `render --phase=1` writes.
func openPhase1(ctx context.Context, io *IOStreams, cfg *Config, pf *phase1Flags, needProject bool) (*phase1, error) {
	st, src, ds := spec.LoadFile(cfg.File)
	if err := reportDiagnostics(io, cfg.File, src, ds); err != nil {
		return nil, err
	}
	store, err := state.Open(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	out := pf.OutDir
	if out == "" {
		out = filepath.Join(filepath.Dir(cfg.File), "rendered", "phase1")
	}
	p := &phase1{stack: st, store: store, outDir: out}
	if needProject {
		res, rds := engine.Render(ctx, st, engine.RenderOptionsIn{Backend: compose.New(), Store: store, OutDir: out})
		if err := reportDiagnostics(io, cfg.File, src, rds); err != nil {
			return nil, err
		}
		p.render = res
	}
	host := pf.Host
	if host == "" {
		host = st.Phase1.Host
	}
	p.target, err = compose.NewTarget(ctx, compose.TargetOptions{Host: host, Progress: pf.Progress, Out: io.ErrOut, IsTTY: isTerminal(io.ErrOut)})
	if err != nil {
		return nil, err
	}
	if needProject {
		abs, err := filepath.Abs(out)
		if err != nil {
			return nil, err
		}
		if p.project, err = p.target.Load(ctx, abs, st.Name); err != nil {
			return nil, fmt.Errorf("load %s: %w", filepath.Join(out, compose.ComposeFile), err)
		}
	}
	return p, nil
}

func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// UpOptions are the inputs of `orchestrator up`.
type UpOptions struct {
	IO            *IOStreams
	Config        *Config
	Flags         phase1Flags
	WaitTimeout   time.Duration
	LockTimeout   time.Duration
	SkipPreflight bool
}

// NewCmdUp builds `orchestrator up`.
func NewCmdUp(f *Factory) *cobra.Command {
	opts := &UpOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Render the stack and bring it up on its Docker host, waiting until every service is healthy",
		Long: `Up renders the stack (exactly what render --phase=1 writes), checks the host, and
applies it through the Docker Compose engine: missing services are created, changed
ones recreated, unchanged ones left alone. It waits until every service is healthy
(one-shot services: completed), then prints each component's URL.
Volumes are never deleted, and a volume whose configuration diverged is kept.`,
		Example: `  orchestrator up --phase=1
  orchestrator up -H ssh://deploy@203.0.113.10 --progress plain`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Config = f.Config()
			if err := opts.Flags.check(); err != nil {
				return err
			}
			return runUp(cmd.Context(), opts)
		},
	}
	opts.Flags.register(cmd, true)
	cmd.Flags().DurationVar(&opts.WaitTimeout, "wait-timeout", 10*time.Minute, "how long to wait for services to become healthy")
	cmd.Flags().DurationVar(&opts.LockTimeout, "lock-timeout", 0, "wait this long for another run on this stack to finish (default: fail at once)")
	cmd.Flags().BoolVar(&opts.SkipPreflight, "skip-preflight", false, "skip the host checks (memory, disk, vm.max_map_count)")
	return cmd
}

func runUp(ctx context.Context, opts *UpOptions) error {
	lock, err := lockStack(ctx, opts.IO, opts.Config, "up", opts.LockTimeout)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	p, err := openPhase1(ctx, opts.IO, opts.Config, &opts.Flags, true)
	if err != nil {
		return err
	}
	if !opts.SkipPreflight {
		if err := runPreflight(ctx, opts.IO, p); err != nil {
			return err
		}
	}
	// Plan first: with nothing to change, applying would only restart the
	// one-shot services and wait; a second up must be a no-op.
	pl, err := p.target.Plan(ctx, p.project, loadApplied(p))
	if err != nil {
		return fmt.Errorf("plan: %w", err)
	}
	var upErr error
	if pl.HasChanges() {
		if err := pl.WriteText(opts.IO.ErrOut); err != nil {
			return err
		}
		upErr = p.target.Up(ctx, p.project, opts.WaitTimeout)
	} else {
		fmt.Fprintln(opts.IO.ErrOut, "No changes: the engine already runs what the spec says.")
	}
	for _, msg := range p.target.Declined {
		fmt.Fprintf(opts.IO.ErrOut, "Kept: %s (answered no; volumes are only deleted by `down --volumes`).\n", msg)
	}
	failures, err := p.target.Explain(context.WithoutCancel(ctx), p.project)
	if err != nil && upErr == nil {
		return err
	}
	if upErr != nil || len(failures) > 0 {
		if errors.Is(upErr, context.Canceled) {
			return upErr
		}
		printFailures(opts.IO, failures)
		if upErr != nil {
			return fmt.Errorf("up failed: %w", upErr)
		}
		return fmt.Errorf("up failed: %s not healthy", plural(len(failures), "service"))
	}
	if err := saveApplied(p); err != nil {
		return err
	}
	printEndpoints(opts.IO, p)
	return nil
}

// appliedFile records the last successful up, so plan can tell drift
// (changed or removed by hand) from changes not applied yet.
const appliedFile = "compose/applied.json"

func saveApplied(p *phase1) error {
	rec, err := compose.Applied(p.project)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	return p.store.WriteFile(appliedFile, append(b, '\n'))
}

func loadApplied(p *phase1) map[string]string {
	b, err := os.ReadFile(filepath.Join(p.store.Dir(), appliedFile))
	if err != nil {
		return nil
	}
	var rec map[string]string
	if json.Unmarshal(b, &rec) != nil {
		return nil
	}
	return rec
}

func printFailures(io *IOStreams, failures []compose.Failure) {
	for _, f := range failures {
		state := f.State
		if f.Health != "" {
			state += ", " + f.Health
		}
		if f.State == "exited" {
			state += fmt.Sprintf(" (exit code %d)", f.ExitCode)
		}
		fmt.Fprintf(io.ErrOut, "\nService %s is not up: %s\n", f.Service, state)
		if f.LastProbe != "" {
			fmt.Fprintf(io.ErrOut, "  last healthcheck: %s\n", oneLine(f.LastProbe))
		}
		if len(f.LastLogs) > 0 {
			fmt.Fprintf(io.ErrOut, "  last log lines of %s:\n", f.Container)
			for _, l := range f.LastLogs {
				fmt.Fprintf(io.ErrOut, "    %s\n", l)
			}
		}
	}
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// adminSecrets says where each component's admin login is kept.
var adminSecrets = map[string]string{
	"portainer": "user admin, password in secrets/portainer-admin-password",
	"kestra":    "user admin@<domain>, password in secrets/kestra-admin-password",
	"tracardi":  "installation token in secrets/tracardi-installation-token",
}

func printEndpoints(io *IOStreams, p *phase1) {
	fmt.Fprintf(io.Out, "Stack %s is up on %s.\n", p.stack.Name, p.target.Host())
	for _, r := range p.render.Deployment.Routes {
		comp := strings.SplitN(r.Host, ".", 2)[0]
		if r.Host == p.stack.Domain {
			comp = "app"
		}
		port := ""
		if hp := p.stack.Phase1.HTTPSPort; hp != 0 && hp != 443 {
			port = fmt.Sprintf(":%d", hp)
		}
		line := fmt.Sprintf("  %-14s https://%s%s", comp, r.Host, port)
		if note, ok := adminSecrets[comp]; ok {
			line += "  (" + strings.ReplaceAll(note, "<domain>", p.stack.Domain) + ")"
		}
		fmt.Fprintln(io.Out, line)
	}
	fmt.Fprintf(io.Out, "Credentials are kept in %s (0600 files; never printed).\n", p.store.Dir())
}

func lockStack(ctx context.Context, io *IOStreams, cfg *Config, op string, timeout time.Duration) (*state.Lock, error) {
	store, err := state.Open(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	lock, err := store.Lock(ctx, op, timeout)
	if err != nil {
		return nil, err
	}
	if s := lock.Stale; s != nil {
		fmt.Fprintf(io.ErrOut, "Note: a previous %s (pid %d, %s, since %s) did not finish; converging from where it stopped.\n",
			orUnknown(s.Operation), s.PID, orUnknown(s.Who), s.Created.Format(time.RFC3339))
	}
	return lock, nil
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func runPreflight(ctx context.Context, io *IOStreams, p *phase1) error {
	info, err := p.target.Info(ctx)
	if err != nil {
		return fmt.Errorf("preflight: the Docker engine at %s does not answer: %v\n  fix: start it (e.g. `sudo systemctl start docker`), or point phase1.host / DOCKER_HOST / --host at a running engine", p.target.Host(), err)
	}
	facts := preflight.LocalFacts(info.Version, info.MemTotal, info.RootDir, info.Local)
	problems := preflight.Check(facts, preflight.NeedsOf(p.render.Deployment))
	fmt.Fprintf(io.ErrOut, "Preflight: Docker %s (API %s) at %s, %d CPUs, %.1f GiB memory.\n", info.Version, info.APIVersion, p.target.Host(), info.NCPU, float64(info.MemTotal)/(1<<30))
	failed := 0
	for _, pr := range problems {
		kind := "error"
		if pr.Warning {
			kind = "warning"
		} else {
			failed++
		}
		fmt.Fprintf(io.ErrOut, "Preflight %s (%s): %s\n  fix: %s\n", kind, pr.Check, pr.Summary, pr.Fix)
	}
	if failed > 0 {
		return fmt.Errorf("preflight failed (%s); fix the host, or pass --skip-preflight to apply anyway", plural(failed, "problem"))
	}
	return nil
}

// PlanOptions are the inputs of `orchestrator plan`.
type PlanOptions struct {
	IO               *IOStreams
	Config           *Config
	Flags            phase1Flags
	Output           string
	DetailedExitcode bool
}

// NewCmdPlan builds `orchestrator plan`.
func NewCmdPlan(f *Factory) *cobra.Command {
	opts := &PlanOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Show what up would change: the spec against what the engine runs",
		Long: `Plan compares the rendered stack (desired) with the project's containers, networks and
volumes on the engine (actual) and lists, per resource, create, update (recreate),
delete or no-op with the reason. Containers stopped, removed or changed by hand show
up as drift. Secrets appear only as digests.

Exit codes with --detailed-exitcode: 0 no changes, 1 error, 2 changes.`,
		Example: `  orchestrator plan
  orchestrator plan --output json --detailed-exitcode`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Config = f.Config()
			if err := opts.Flags.check(); err != nil {
				return err
			}
			if err := checkOutput(opts.Output); err != nil {
				return err
			}
			return runPlan(cmd.Context(), opts)
		},
	}
	opts.Flags.register(cmd, false)
	cmd.Flags().StringVar(&opts.Output, "output", "text", "output format: text or json")
	cmd.Flags().BoolVar(&opts.DetailedExitcode, "detailed-exitcode", false, "exit 2 when there are changes, 0 when there are none")
	return cmd
}

func runPlan(ctx context.Context, opts *PlanOptions) error {
	opts.Flags.Progress = "quiet"
	p, err := openPhase1(ctx, opts.IO, opts.Config, &opts.Flags, true)
	if err != nil {
		return err
	}
	pl, err := p.target.Plan(ctx, p.project, loadApplied(p))
	if err != nil {
		return fmt.Errorf("plan: %w", err)
	}
	if opts.Output == "json" {
		err = pl.WriteJSON(opts.IO.Out)
	} else {
		err = pl.WriteText(opts.IO.Out)
	}
	if err != nil {
		return err
	}
	if opts.DetailedExitcode && pl.HasChanges() {
		return exitError{code: 2}
	}
	return nil
}

// StatusOptions are the inputs of `orchestrator status`.
type StatusOptions struct {
	IO     *IOStreams
	Config *Config
	Flags  phase1Flags
	Output string
}

// NewCmdStatus builds `orchestrator status`.
func NewCmdStatus(f *Factory) *cobra.Command {
	opts := &StatusOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show each service's state, health, ports, uptime and image",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Config = f.Config()
			if err := opts.Flags.check(); err != nil {
				return err
			}
			if err := checkOutput(opts.Output); err != nil {
				return err
			}
			return runStatus(cmd.Context(), opts)
		},
	}
	opts.Flags.register(cmd, false)
	cmd.Flags().StringVar(&opts.Output, "output", "text", "output format: text or json")
	return cmd
}

func runStatus(ctx context.Context, opts *StatusOptions) error {
	opts.Flags.Progress = "quiet"
	p, err := openPhase1(ctx, opts.IO, opts.Config, &opts.Flags, false)
	if err != nil {
		return err
	}
	sts, err := p.target.Status(ctx, p.stack.Name)
	if err != nil {
		return err
	}
	if opts.Output == "json" {
		return writeJSON(opts.IO.Out, map[string]any{"format_version": "1.0", "stack": p.stack.Name, "services": sts})
	}
	if len(sts) == 0 {
		fmt.Fprintf(opts.IO.Out, "Stack %s has no containers on %s. Run `orchestrator up`.\n", p.stack.Name, p.target.Host())
		return nil
	}
	w := newTable(opts.IO.Out, "SERVICE", "CONTAINER", "STATE", "HEALTH", "UPTIME", "PORTS", "IMAGE")
	for _, s := range sts {
		state := s.State
		if s.State == "exited" {
			state = fmt.Sprintf("exited (%d)", s.ExitCode)
		}
		w.row(s.Service, s.Container, state, dash(s.Health), dash(s.Uptime), dash(strings.Join(s.Ports, ",")), s.Image)
	}
	return w.flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// DownOptions are the inputs of `orchestrator down`.
type DownOptions struct {
	IO          *IOStreams
	Config      *Config
	Flags       phase1Flags
	Volumes     bool
	Yes         bool
	LockTimeout time.Duration
}

// NewCmdDown builds `orchestrator down`.
func NewCmdDown(f *Factory) *cobra.Command {
	opts := &DownOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Remove the stack's containers and networks; keep its volumes",
		Long: `Down removes the stack's containers and networks. Volumes, and the data in them, are
kept unless --volumes is given; then the volumes that will be deleted are listed and
you are asked to confirm (or pass --yes).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Config = f.Config()
			if err := opts.Flags.check(); err != nil {
				return err
			}
			return runDown(cmd.Context(), opts)
		},
	}
	opts.Flags.register(cmd, true)
	cmd.Flags().BoolVarP(&opts.Volumes, "volumes", "v", false, "also delete the stack's volumes and all their data")
	cmd.Flags().BoolVarP(&opts.Yes, "yes", "y", false, "do not ask for confirmation")
	cmd.Flags().DurationVar(&opts.LockTimeout, "lock-timeout", 0, "wait this long for another run on this stack to finish")
	return cmd
}

func runDown(ctx context.Context, opts *DownOptions) error {
	lock, err := lockStack(ctx, opts.IO, opts.Config, "down", opts.LockTimeout)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	p, err := openPhase1(ctx, opts.IO, opts.Config, &opts.Flags, false)
	if err != nil {
		return err
	}
	if opts.Volumes {
		vols, err := p.target.Volumes(ctx, p.stack.Name)
		if err != nil {
			return err
		}
		if len(vols) > 0 {
			fmt.Fprintf(opts.IO.ErrOut, "These volumes and ALL their data will be deleted:\n")
			for _, v := range vols {
				fmt.Fprintf(opts.IO.ErrOut, "  %s\n", v)
			}
			if !opts.Yes {
				ok, err := confirm(opts.IO, "Delete them? Type 'yes' to confirm: ")
				if err != nil {
					return err
				}
				if !ok {
					return fmt.Errorf("nothing deleted: not confirmed")
				}
			}
		}
	}
	if err := p.target.Down(ctx, p.stack.Name, nil, opts.Volumes); err != nil {
		return fmt.Errorf("down: %w", err)
	}
	if opts.Volumes {
		fmt.Fprintf(opts.IO.Out, "Stack %s is down; its volumes were deleted.\n", p.stack.Name)
	} else {
		fmt.Fprintf(opts.IO.Out, "Stack %s is down; its volumes and data are kept (delete them with `down --volumes`).\n", p.stack.Name)
	}
	return nil
}

func confirm(io *IOStreams, prompt string) (bool, error) {
	if f, ok := io.In.(*os.File); ok && !term.IsTerminal(int(f.Fd())) {
		return false, fmt.Errorf("refusing to delete volumes without a terminal to confirm on; pass --yes")
	}
	fmt.Fprint(io.ErrOut, prompt)
	line, err := bufio.NewReader(io.In).ReadString('\n')
	if err != nil && line == "" {
		return false, fmt.Errorf("no confirmation read; pass --yes to delete without asking")
	}
	return strings.TrimSpace(strings.ToLower(line)) == "yes", nil
}

package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/aipairpro/orchestrator/internal/backend/compose"
	"github.com/aipairpro/orchestrator/internal/preflight"
)

// UpOptions are the inputs of `orchestrator up`.
type UpOptions struct {
	IO            *IOStreams
	Config        *Config
	Flags         phase1Flags
	WaitTimeout   time.Duration
	LockTimeout   time.Duration
	SkipPreflight bool
	// StabilityWindow is how long a container without a healthcheck must
	// run without restarting before up calls it up.
	StabilityWindow time.Duration
}

// NewCmdUp builds `orchestrator up`.
func NewCmdUp(f *Factory) *cobra.Command {
	opts := &UpOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Render the stack and bring it up on its Docker host, waiting until every service is healthy",
		Long: `Up renders the stack (exactly what render --phase=1 writes), checks the host and
that every image is on the engine or can be pulled (else it changes nothing and
says which, why and what to do), and applies it through the Docker Compose
engine: missing services are created, changed ones recreated, unchanged ones
left alone. It waits until every service is healthy
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
	cmd.Flags().DurationVar(&opts.StabilityWindow, "stability-window", compose.DefaultStabilityWindow, "how long a container without a healthcheck, or one the engine restarted, must run without restarting to count as up (0: do not watch)")
	return cmd
}

func runUp(ctx context.Context, opts *UpOptions) error {
	p, lock, err := openPhase1Locked(ctx, opts.IO, opts.Config, &opts.Flags, "up", opts.LockTimeout, true)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	if !opts.SkipPreflight {
		if err := runPreflight(ctx, opts.IO, p); err != nil {
			return err
		}
	}
	// Plan first: with nothing to change, applying would only restart the
	// one-shot services and wait; a second up must be a no-op.
	pl, err := p.target.Plan(ctx, p.project, planOptions(p))
	if err != nil {
		return fmt.Errorf("plan: %w", err)
	}
	if err := refusedError(pl); err != nil {
		_ = pl.WriteText(opts.IO.ErrOut)
		return err
	}
	var upErr error
	var failures []compose.Failure
	if pl.HasChanges() {
		// Every image on the engine or pullable, before anything changes:
		// compose would start every pull and interrupt them at the first error.
		if err := unavailableImagesError(ctx, p); err != nil {
			return err
		}
		if err := pl.WriteText(opts.IO.ErrOut); err != nil {
			return err
		}
		upErr = p.target.Up(ctx, p.project, opts.WaitTimeout)
		if ctx.Err() == nil && !errors.Is(upErr, context.Canceled) {
			// Compose calls a container without healthcheck ready once it
			// runs, and a crash loop runs for a moment after each restart.
			var unstable []compose.Failure
			unstable, err = p.target.Settle(ctx, p.project, settleOptions(opts))
			if err == nil {
				explainCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
				defer cancel()
				failures, err = p.target.Explain(explainCtx, p.project)
				failures = compose.MergeFailures(unstable, failures)
			}
		}
	} else {
		fmt.Fprintln(opts.IO.ErrOut, "No changes: the engine already runs what the spec says.")
		// Compose did not run, so nothing waited: containers the engine
		// has just restarted may still be starting, or crash-looping.
		failures, err = waitStarting(ctx, opts.IO, p, opts.WaitTimeout)
		if err == nil && len(failures) == 0 {
			failures, err = p.target.Settle(ctx, p.project, settleOptions(opts))
		}
	}
	for _, msg := range p.target.Declined {
		fmt.Fprintf(opts.IO.ErrOut, "Kept: %s (answered no; volumes are only deleted by `down --volumes`).\n", msg)
	}
	if errors.Is(upErr, context.Canceled) || ctx.Err() != nil {
		return fmt.Errorf("interrupted: the next up converges from where this one stopped")
	}
	if err != nil && upErr == nil {
		return err
	}
	if upErr != nil || len(failures) > 0 {
		printFailures(opts.IO, failures)
		if upErr != nil {
			return fmt.Errorf("up failed: %w", upErr)
		}
		return fmt.Errorf("up failed: %s not up", plural(len(failures), "service"))
	}
	if err := saveApplied(p); err != nil {
		return err
	}
	printEndpoints(opts.IO, p)
	return nil
}

// waitStarting polls the services until none is still starting or timeout
// passes, and returns what is then not up.
func waitStarting(ctx context.Context, io *IOStreams, p *phase1, timeout time.Duration) ([]compose.Failure, error) {
	deadline := time.Now().Add(timeout)
	announced := false
	for {
		failures, err := p.target.Explain(ctx, p.project)
		if err != nil {
			return nil, err
		}
		var starting []string
		for _, f := range failures {
			if f.Starting() {
				starting = append(starting, f.Container)
			}
		}
		if len(starting) == 0 || time.Now().After(deadline) {
			return failures, nil
		}
		if !announced {
			fmt.Fprintf(io.ErrOut, "Waiting for %s to become healthy: %s\n", plural(len(starting), "container"), strings.Join(starting, ", "))
			announced = true
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// settleOptions tells the user what up waits for, and why, before the
// stability window passes in silence.
func settleOptions(opts *UpOptions) compose.SettleOptions {
	return compose.SettleOptions{Window: opts.StabilityWindow, Watching: func(containers []string, wait time.Duration) {
		they := "they stay"
		if len(containers) == 1 {
			they = "it stays"
		}
		fmt.Fprintf(opts.IO.ErrOut, "Watching %s for %s to be sure %s up (without a healthcheck, a crash loop looks running at first): %s\n",
			plural(len(containers), "container"), wait.Round(100*time.Millisecond), they, strings.Join(containers, ", "))
	}}
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
		if f.State == "exited" || f.State == "restarting" {
			state += fmt.Sprintf(" (exit code %d)", f.ExitCode)
		}
		if f.Restarts > 0 {
			state += ", restarted " + plural(f.Restarts, "time")
		}
		fmt.Fprintf(io.ErrOut, "\nService %s is not up: %s\n", f.Service, state)
		if f.Restarts > 0 || f.State == "restarting" {
			fmt.Fprintln(io.ErrOut, "  it exited and the engine restarted it (its restart policy); its logs below say why it exits")
		}
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
		line := fmt.Sprintf("  %-14s %s", comp, r.URL)
		if note, ok := adminSecrets[comp]; ok {
			line += "  (" + strings.ReplaceAll(note, "<domain>", p.stack.Domain) + ")"
		}
		fmt.Fprintln(io.Out, line)
	}
	fmt.Fprintf(io.Out, "Credentials are kept in %s (0600 files; never printed).\n", p.store.Dir())
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
	facts := preflight.LocalFacts(info.MemTotal, info.RootDir, info.Local)
	needs := preflight.NeedsOf(p.render.Deployment)
	if !info.Local && len(needs.Elasticsearch) > 0 {
		// This process cannot read the remote host's /proc; a short-lived
		// container on it can.
		if v, err := p.target.MaxMapCount(ctx, p.project, needs.Elasticsearch); err != nil {
			facts.MaxMapCountUnread = err.Error()
		} else {
			facts.MaxMapCount, facts.MaxMapCountUnread = v, ""
		}
	}
	problems := preflight.Check(facts, needs)
	fmt.Fprintf(io.ErrOut, "Preflight: Docker %s (API %s) at %s, %d CPUs, %.1f GiB memory.\n", info.Version, info.APIVersion, p.target.Host(), info.NCPU, float64(info.MemTotal)/(1<<30))
	if len(needs.Elasticsearch) > 0 && facts.MaxMapCount >= preflight.MinMaxMapCount {
		fmt.Fprintf(io.ErrOut, "Preflight: vm.max_map_count is %d on the engine's host (Elasticsearch needs at least %d).\n", facts.MaxMapCount, preflight.MinMaxMapCount)
	}
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

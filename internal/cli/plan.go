package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/aipairpro/orchestrator/internal/backend/compose"
	"github.com/aipairpro/orchestrator/internal/plan"
	"github.com/aipairpro/orchestrator/internal/spec"
)

// PlanOptions are the inputs of `orchestrator plan`.
type PlanOptions struct {
	IO               *IOStreams
	Config           *Config
	Flags            phase1Flags
	Output           string
	DetailedExitcode bool
	LockTimeout      time.Duration
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
up as drift. Secrets appear only as digests. Like up, plan takes the stack's lock while
it renders, so it never rewrites files under a running up.

A change that would break data is refused, with what to do instead, and plan
exits 1: a PostgreSQL image of another major than the data in its volume.
Images the engine neither has nor can pull are a warning (JSON:
unavailable_images), with the reason and the fix: up would stop on them.

Exit codes with --detailed-exitcode: 0 no changes, 1 error (or a refused change),
2 changes.`,
		Example: `  orchestrator plan
  orchestrator plan --output json --detailed-exitcode`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Config = f.Config()
			if err := opts.Flags.checkWithOutput(opts.Output); err != nil {
				return err
			}
			return runPlan(cmd.Context(), opts)
		},
	}
	opts.Flags.register(cmd, false)
	cmd.Flags().StringVar(&opts.Output, "output", "text", "output format: text or json")
	cmd.Flags().BoolVar(&opts.DetailedExitcode, "detailed-exitcode", false, "exit 2 when there are changes, 0 when there are none")
	cmd.Flags().DurationVar(&opts.LockTimeout, "lock-timeout", 0, "wait this long for another run on this stack to finish (default: fail at once)")
	return cmd
}

func runPlan(ctx context.Context, opts *PlanOptions) error {
	opts.Flags.Progress = "quiet"
	p, lock, err := openPhase1Locked(ctx, opts.IO, opts.Config, &opts.Flags, "plan", opts.LockTimeout, true)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	pl, err := p.target.Plan(ctx, p.project, planOptions(p))
	if err != nil {
		return fmt.Errorf("plan: %w", err)
	}
	if pl.HasChanges() {
		if err := warnUnavailableImages(ctx, opts.IO, p, pl); err != nil {
			return err
		}
	}
	if opts.Output == "json" {
		err = pl.WriteJSON(opts.IO.Out)
	} else {
		err = pl.WriteText(opts.IO.Out)
	}
	if err != nil {
		return err
	}
	if err := refusedError(pl); err != nil {
		return err
	}
	if opts.DetailedExitcode && pl.HasChanges() {
		return exitError{code: 2}
	}
	return nil
}

// planOptions are what plan and up tell the target beyond the project.
func planOptions(p *phase1) compose.PlanOptions {
	major := p.stack.Database.Version
	if major == "" {
		major = spec.DefaultPostgresVersion
	}
	return compose.PlanOptions{Applied: loadApplied(p), PostgresMajor: major}
}

// refusedError is the error of a plan with refused changes: nothing of it
// may be applied. The plan's own output says what to do.
func refusedError(pl *plan.Plan) error {
	refused := pl.Refused()
	if len(refused) == 0 {
		return nil
	}
	var parts []string
	for _, c := range refused {
		parts = append(parts, c.Address+": "+c.Refused)
	}
	return fmt.Errorf("refused, nothing applied: %s\n  fix: see the fix under the change in the plan", strings.Join(parts, "; "))
}

package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/aipairpro/orchestrator/internal/backend/compose"
	"github.com/aipairpro/orchestrator/internal/engine"
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

// checkWithOutput is check plus the --output value of commands that have one.
func (pf *phase1Flags) checkWithOutput(output string) error {
	if err := pf.check(); err != nil {
		return err
	}
	return checkOutput(output)
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
}

// openPhase1 loads the spec, renders it (the same code path as `render`),
// connects to the engine and loads the rendered project the way compose
// does. What is applied is exactly what `render --phase=1` writes. With a
// read-only store (plan) the rendering is a dry run held in memory:
// nothing is written, and a missing secret is only reported. Either way a
// new secret is refused while the engine holds data made with an older
// value (engine.DataAtRiskError).
func openPhase1(ctx context.Context, io *IOStreams, cfg *Config, store *state.Store, pf *phase1Flags, needProject bool) (*phase1, error) {
	st, src, ds := spec.LoadFileContext(ctx, cfg.File)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := reportDiagnostics(io, cfg.File, src, ds); err != nil {
		return nil, err
	}
	out := pf.OutDir
	if out == "" {
		out = filepath.Join(filepath.Dir(cfg.File), "rendered", "phase1")
	}
	p := &phase1{stack: st, store: store}
	host := pf.Host
	if host == "" {
		host = st.Phase1.Host
	}
	target, err := compose.NewTarget(ctx, compose.TargetOptions{Host: host, Progress: pf.Progress, Out: io.ErrOut, IsTTY: isTerminal(io.ErrOut)})
	if err != nil {
		return nil, err
	}
	p.target = target
	if !needProject {
		return p, nil
	}
	dryRun := store.ReadOnly()
	res, rds := engine.Render(ctx, st, engine.RenderOptionsIn{
		Backend: compose.New(), Store: store, OutDir: out, DryRun: dryRun,
		ExistingVolumes: func(ctx context.Context, volumes []string) (map[string]string, error) {
			return target.ExistingVolumes(ctx, st.Name, volumes)
		},
	})
	if err := reportDiagnostics(io, cfg.File, src, rds); err != nil {
		return nil, err
	}
	p.render = res
	if len(res.Generated) > 0 {
		fmt.Fprintf(io.ErrOut, "New secrets generated in %s (the engine holds no data of this stack made with older ones): %s\n", filepath.Join(store.Dir(), "secrets"), strings.Join(res.Generated, ", "))
	}
	if len(res.WouldGenerate) > 0 {
		fmt.Fprintf(io.ErrOut, "Secrets that up would generate (the engine holds no data of this stack made with older ones; plan writes nothing): %s\n", strings.Join(res.WouldGenerate, ", "))
	}
	if err := checkPassEnv(res); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(out)
	if err != nil {
		return nil, err
	}
	if dryRun {
		p.project, err = p.target.LoadRendered(ctx, compose.Rendered{Dir: abs, StateDir: store.Dir(), Artifacts: res.Artifacts}, st.Name)
	} else {
		p.project, err = p.target.Load(ctx, abs, st.Name, res.Artifacts.Environment)
	}
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", filepath.Join(out, compose.ComposeFile), err)
	}
	return p, nil
}

// readOnlyOps only read the state directory: plan renders in memory and
// generates nothing, so it never creates, changes or writes state.
var readOnlyOps = map[string]bool{"plan": true}

// lockStack opens the state directory and takes the stack's lock for op,
// noting a previous run that did not finish. A read-only op on a state
// directory that does not exist yet takes no lock: there is nothing to
// read, and creating the directory would be a write.
func lockStack(ctx context.Context, io *IOStreams, stateDir, op string, timeout time.Duration) (*state.Store, *state.Lock, error) {
	store, err := state.OpenWith(stateDir, state.OpenOptions{ReadOnly: readOnlyOps[op], Notify: func(note string) { fmt.Fprintln(io.ErrOut, note) }})
	if err != nil {
		return nil, nil, err
	}
	if !store.Exists() {
		return store, &state.Lock{}, nil
	}
	lock, err := store.Lock(ctx, op, timeout)
	if err != nil {
		return nil, nil, err
	}
	if s := lock.Stale; s != nil {
		next := "converging from where it stopped"
		switch op {
		case "plan":
			next = "the plan shows what is left to do"
		case "render":
			next = "up converges from where it stopped"
		}
		fmt.Fprintf(io.ErrOut, "Note: a previous %s (pid %d, %s, since %s) did not finish; %s.\n",
			orUnknown(s.Operation), s.PID, orUnknown(s.Who), s.Created.Format(time.RFC3339), next)
	}
	return store, lock, nil
}

// openPhase1Locked is openPhase1 under the stack's lock, for the commands
// that change the stack or rewrite its files; the caller unlocks.
func openPhase1Locked(ctx context.Context, io *IOStreams, cfg *Config, pf *phase1Flags, op string, timeout time.Duration, needProject bool) (*phase1, *state.Lock, error) {
	store, lock, err := lockStack(ctx, io, cfg.StateDir, op, timeout)
	if err != nil {
		return nil, nil, err
	}
	p, err := openPhase1(ctx, io, cfg, store, pf, needProject)
	if err != nil {
		_ = lock.Unlock()
		return nil, nil, err
	}
	return p, lock, nil
}

func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// checkPassEnv makes sure the secrets the spec takes from the environment
// are set: compose would otherwise start the service without them (and
// the plan would show a spurious change).
func checkPassEnv(res *engine.Result) error {
	var missing []string
	for _, s := range res.Deployment.Services {
		// The same names, as variables or files (secrets_in_env).
		for _, name := range slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(s.PassEnv), s.PassFiles...)))) {
			if _, ok := os.LookupEnv(name); !ok {
				missing = append(missing, fmt.Sprintf("%s (service %s)", name, s.Name))
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("secrets listed in the spec are not set in the environment: %s\n  fix: export them in the shell that runs orchestrator (their values are never written to disk)", strings.Join(missing, ", "))
	}
	return nil
}

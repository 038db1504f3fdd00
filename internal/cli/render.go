package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/aipairpro/orchestrator/internal/backend/compose"
	"github.com/aipairpro/orchestrator/internal/backend/kubernetes"
	"github.com/aipairpro/orchestrator/internal/catalog"
	"github.com/aipairpro/orchestrator/internal/engine"
	"github.com/aipairpro/orchestrator/internal/spec"
)

// RenderOptions are the inputs of `orchestrator render`.
type RenderOptions struct {
	IO       *IOStreams
	File     string
	StateDir string
	Phase    int
	OutDir   string
	// Effective prints the spec with every default filled in, instead of rendering.
	Effective   bool
	Output      string
	LockTimeout time.Duration
}

// NewCmdRender builds `orchestrator render`.
func NewCmdRender(f *Factory) *cobra.Command {
	opts := &RenderOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "render",
		Short: "Render the stack's deployment files without applying them",
		Long: `Render writes the target's files for the stack: for --phase=1, DIR/docker-compose.yml
plus the proxy's Caddyfile and the database init script; for --phase=2, Kubernetes
manifests, one file per component plus DIR/kustomization.yaml (the OpenTofu half of
phase 2 is not in this version yet). Secret values never go
into DIR: they stay in the state directory, which the compose file references.
The output is byte-for-byte the same for the same spec and state. Render takes the
stack's lock, so it never rewrites files under a running up.`,
		Example: `  orchestrator render --phase=1 -f stack.yaml -o deploy
  orchestrator render --effective`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := f.Config()
			opts.File, opts.StateDir = cfg.File, cfg.StateDir
			if opts.Phase != 1 && opts.Phase != 2 {
				return usageError{fmt.Errorf("invalid --phase %d: use 1 (docker compose) or 2 (kubernetes)", opts.Phase)}
			}
			if err := checkOutput(opts.Output); err != nil {
				return err
			}
			if opts.OutDir == "" {
				opts.OutDir = filepath.Join(filepath.Dir(opts.File), "rendered", fmt.Sprintf("phase%d", opts.Phase))
			}
			return runRender(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&opts.Phase, "phase", 1, "target: 1 = docker compose on one host, 2 = kubernetes + opentofu")
	fl.StringVarP(&opts.OutDir, "out", "o", "", "output directory (default rendered/phase<N> beside the spec)")
	fl.BoolVar(&opts.Effective, "effective", false, "print the spec with every default filled in, and render nothing")
	fl.StringVar(&opts.Output, "output", "text", "output format of the summary: text or json")
	fl.DurationVar(&opts.LockTimeout, "lock-timeout", 0, "wait this long for another run on this stack to finish (default: fail at once)")
	return cmd
}

func runRender(ctx context.Context, opts *RenderOptions) error {
	st, src, ds := spec.LoadFileContext(ctx, opts.File)
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := reportDiagnostics(opts.IO, opts.File, src, ds); err != nil {
		return err
	}
	if opts.Effective {
		return writeEffective(opts.IO, st)
	}
	store, lock, err := lockStack(ctx, opts.IO, opts.StateDir, "render", opts.LockTimeout)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	var backend engine.Backend = compose.New()
	mainFile := compose.ComposeFile
	k8s := &kubernetes.Backend{}
	if opts.Phase == 2 {
		// Kubernetes manifests only: the OpenTofu half of phase 2 is not
		// in this version yet.
		backend, mainFile = k8s, kubernetes.Kustomization
	}
	res, rds := engine.Render(ctx, st, engine.RenderOptionsIn{Backend: backend, Store: store, OutDir: opts.OutDir})
	if err := reportDiagnostics(opts.IO, opts.File, src, rds); err != nil {
		return err
	}
	if len(res.Generated) > 0 {
		// Render does not ask the engine; up does before it uses them.
		fmt.Fprintf(opts.IO.ErrOut, "New secrets generated in %s: %s. If this stack already has data, restore the old files from backup instead: up refuses new values while data made with the old ones exists.\n",
			filepath.Join(store.Dir(), "secrets"), strings.Join(res.Generated, ", "))
	}
	files := make([]string, 0, len(res.Artifacts.Files))
	for _, f := range res.Artifacts.Files {
		files = append(files, filepath.Join(opts.OutDir, filepath.FromSlash(f.Path)))
	}
	if opts.Output == "json" {
		warnings := []string{}
		if k8s.Last != nil {
			warnings = k8s.Last.Warnings
		}
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{
			"format_version": "1.0",
			"phase":          opts.Phase,
			"out_dir":        opts.OutDir,
			"state_dir":      store.Dir(),
			"files":          files,
			"changed":        res.Written,
			"services":       len(res.Deployment.Services),
			"warnings":       warnings,
		})
	}
	if k8s.Last != nil {
		for _, w := range k8s.Last.Warnings {
			fmt.Fprintf(opts.IO.ErrOut, "Warning: %s\n", w)
		}
	}
	fmt.Fprintf(opts.IO.Out, "Rendered %d services to %s (%d of %d files changed).\n", len(res.Deployment.Services), filepath.Join(opts.OutDir, mainFile), len(res.Written), len(files))
	fmt.Fprintf(opts.IO.Out, "Secrets are kept in %s (never in the rendered files).\n", store.Dir())
	return nil
}

func writeEffective(io *IOStreams, st *spec.Stack) error {
	eff := st.WithDefaults(catalog.Pins())
	enc := yaml.NewEncoder(io.Out)
	enc.SetIndent(2)
	if err := enc.Encode(eff); err != nil {
		return err
	}
	return enc.Close()
}

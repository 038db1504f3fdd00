package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/aipairpro/orchestrator/internal/catalog"
	"github.com/aipairpro/orchestrator/internal/diag"
	"github.com/aipairpro/orchestrator/internal/model"
	"github.com/aipairpro/orchestrator/internal/spec"
)

// ValidateOptions are the inputs of `orchestrator validate`.
type ValidateOptions struct {
	IO   *IOStreams
	File string
	// Output is "text" or "json".
	Output string
}

// NewCmdValidate builds `orchestrator validate`.
func NewCmdValidate(f *Factory) *cobra.Command {
	opts := &ValidateOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check the stack spec and report every problem with its position",
		Example: `  orchestrator validate -f stack.yaml
  orchestrator validate --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.File = f.Config().File
			if err := checkOutput(opts.Output); err != nil {
				return err
			}
			return runValidate(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "text", "output format: text or json")
	return cmd
}

func checkOutput(o string) error {
	if o != "text" && o != "json" {
		return usageError{fmt.Errorf("invalid --output %q: use text or json", o)}
	}
	return nil
}

func runValidate(ctx context.Context, opts *ValidateOptions) error {
	_, dep, src, ds := loadAndBuild(ctx, opts.File)
	if err := ctx.Err(); err != nil {
		return err
	}
	if opts.Output == "json" {
		if err := ds.WriteJSON(opts.IO.Out); err != nil {
			return err
		}
		if ds.HasErrors() {
			return errSilent
		}
		return nil
	}
	if err := reportDiagnostics(opts.IO, opts.File, src, ds); err != nil {
		return err
	}
	fmt.Fprintf(opts.IO.Out, "%s is valid: %d services, %d routes.\n", opts.File, len(dep.Services), len(dep.Routes))
	return nil
}

// loadAndBuild loads the spec and builds its deployment, collecting the
// diagnostics of both steps.
func loadAndBuild(ctx context.Context, file string) (*spec.Stack, *model.Deployment, diag.Sources, diag.Diagnostics) {
	st, src, ds := spec.LoadFileContext(ctx, file)
	if ds.HasErrors() {
		return nil, nil, src, ds
	}
	dep, bds := catalog.Build(st)
	ds = append(ds, bds...)
	ds.Sort()
	return st, dep, src, ds
}

// reportDiagnostics prints diagnostics to stderr; with errors it returns
// errSilent so the command exits 1 without printing them twice.
func reportDiagnostics(io *IOStreams, file string, src diag.Sources, ds diag.Diagnostics) error {
	if len(ds) == 0 {
		return nil
	}
	if err := ds.WriteText(io.ErrOut, src); err != nil {
		return err
	}
	errs, warns := ds.Count()
	if errs > 0 {
		fmt.Fprintf(io.ErrOut, "\n%s: %s, %s.\n", file, plural(errs, "error"), plural(warns, "warning"))
		return errSilent
	}
	return nil
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/aipairpro/orchestrator/internal/backend/compose"
)

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
	p, lock, err := openPhase1Locked(ctx, opts.IO, opts.Config, &opts.Flags, "down", opts.LockTimeout, false)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	// Before listing volumes to delete: one of another compose project of
	// the same name must not even be offered.
	foreign, err := p.target.Foreign(ctx, p.stack.Name)
	if err != nil {
		return err
	}
	if len(foreign) > 0 {
		for _, c := range foreign {
			fmt.Fprintf(opts.IO.ErrOut, "Not this stack's: %s: %s\n", c.Address, c.Reason)
		}
		return compose.ForeignError("down", foreign)
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
	if err := p.target.Down(ctx, p.stack.Name, opts.Volumes); err != nil {
		return fmt.Errorf("down: %w", err)
	}
	// What down removed was not removed by hand: forget the last up, so
	// the next plan shows creations rather than drift.
	if err := os.Remove(filepath.Join(p.store.Dir(), appliedFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
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

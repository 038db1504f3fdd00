package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

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
			if err := opts.Flags.checkWithOutput(opts.Output); err != nil {
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
	// Status asks the engine only: it neither reads nor touches the state
	// directory (which may not exist, or be shared).
	p, err := openPhase1(ctx, opts.IO, opts.Config, nil, &opts.Flags, false)
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
	w := newTable(opts.IO.Out, "SERVICE", "CONTAINER", "STATE", "HEALTH", "RESTARTS", "UPTIME", "PORTS", "IMAGE")
	for _, s := range sts {
		state := s.State
		switch {
		case s.State == "exited" || s.State == "restarting":
			state = fmt.Sprintf("%s (%d)", s.State, s.ExitCode)
		case s.State == "running" && !s.OK && s.Restarts > 0:
			// Restarted moments ago: a crash loop between two crashes.
			state = "running (unstable)"
		}
		w.row(s.Service, s.Container, state, dash(s.Health), fmt.Sprint(s.Restarts), dash(s.Uptime), dash(strings.Join(s.Ports, ",")), s.Image)
	}
	return w.flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

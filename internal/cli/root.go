// Package cli wires the commands: cobra and viper live here and nowhere
// else. Each command is built by a constructor that takes the Factory, parses
// flags into an options struct and calls a plain run function.
package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/aipairpro/orchestrator/internal/diag"
	"github.com/aipairpro/orchestrator/internal/spec"
	"github.com/aipairpro/orchestrator/internal/state"
)

// Exit codes, documented in the README.
const (
	ExitOK = 0
	// ExitError: the run failed, or the spec is invalid.
	ExitError = 1
	// ExitUsage: the command line is wrong. (Under --detailed-exitcode, 2
	// will also mean "the plan has changes", as in OpenTofu.)
	ExitUsage = 2
)

// IOStreams are the command's standard streams.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
}

// Config is the typed configuration, read once at the root from flags,
// ORCHESTRATOR_* environment variables and an optional config file.
type Config struct {
	// File is the stack spec.
	File string
	// StateDir is the state directory; default .orchestrator beside File.
	StateDir string
}

// Factory hands commands their dependencies.
type Factory struct {
	IO *IOStreams
	// Config returns the configuration read at the root.
	Config func() *Config
}

// shutdownGrace is how long a run may take to wind down after TERM or INT
// (release its lock, tell compose to stop, remove a helper container)
// before the process exits anyway.
const shutdownGrace = 5 * time.Second

// Main runs the CLI with the process's arguments and returns the exit code.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	done := make(chan int, 1)
	go func() { done <- Run(ctx, os.Args[1:], &IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}) }()
	select {
	case code := <-done:
		return code
	case <-ctx.Done():
	}
	// After the first TERM or Ctrl-C the run winds down: everything it
	// does observes ctx. A second signal kills at once, and a run still
	// busy after shutdownGrace (a call that ignores its context) is left
	// behind: every write is atomic and the kernel releases the lock.
	stop()
	select {
	case code := <-done:
		return code
	case <-time.After(shutdownGrace):
		fmt.Fprintln(os.Stderr, "Interrupted.")
		return ExitError
	}
}

// Run executes one command line; tests call it in-process.
func Run(ctx context.Context, args []string, io *IOStreams) int {
	root := NewCmdRoot(io)
	root.SetArgs(args)
	root.SetIn(io.In)
	root.SetOut(io.Out)
	root.SetErr(io.ErrOut)
	err := root.ExecuteContext(ctx)
	return exitCode(err, io.ErrOut)
}

// NewCmdRoot builds the command tree.
func NewCmdRoot(ios *IOStreams) *cobra.Command {
	cfg := &Config{}
	v := viper.New()
	f := &Factory{IO: ios, Config: func() *Config { return cfg }}
	var configFile string
	root := &cobra.Command{
		Use:   "orchestrator",
		Short: "Deploy the whole platform from one stack spec, from one VPS to Kubernetes",
		Long: `orchestrator reads one stack spec (stack.yaml) and renders and applies it:
Phase 1 as a docker-compose.yml on one host, Phase 2 as Kubernetes manifests
and OpenTofu. Secrets are generated once and kept in the state directory.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return loadConfig(cmd, v, configFile, cfg)
		},
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w\nSee '%s --help'.", err, c.CommandPath())}
	})
	pf := root.PersistentFlags()
	pf.StringP("file", "f", "stack.yaml", "stack spec file (env ORCHESTRATOR_FILE)")
	pf.String("state-dir", "", "state directory holding secrets (env ORCHESTRATOR_STATE_DIR; default .orchestrator beside the spec)")
	pf.StringVar(&configFile, "config", "", "optional config file with defaults for these flags (env ORCHESTRATOR_CONFIG)")

	root.AddCommand(
		NewCmdInit(f),
		NewCmdValidate(f),
		NewCmdRender(f),
		NewCmdUp(f),
		NewCmdPlan(f),
		NewCmdStatus(f),
		NewCmdDown(f),
		NewCmdSchema(f),
		NewCmdVersion(f),
	)
	return root
}

// loadConfig is the one place viper is read: flags win over environment,
// environment over the config file, the file over defaults.
func loadConfig(cmd *cobra.Command, v *viper.Viper, configFile string, cfg *Config) error {
	v.SetEnvPrefix("ORCHESTRATOR")
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	v.AutomaticEnv()
	for _, name := range []string{"file", "state-dir"} {
		if err := v.BindPFlag(name, cmd.Flags().Lookup(name)); err != nil {
			return err
		}
	}
	if configFile == "" {
		configFile = os.Getenv("ORCHESTRATOR_CONFIG")
	}
	if configFile != "" {
		v.SetConfigFile(configFile)
		// Read and checked as the spec is (bounded, interruptible, aliases
		// counted) before viper decodes it.
		data, err := spec.ReadFile(cmd.Context(), configFile)
		if err != nil {
			return fmt.Errorf("read config file %s: %w", configFile, err)
		}
		if ext := strings.ToLower(filepath.Ext(configFile)); ext == ".yaml" || ext == ".yml" {
			if d := spec.CheckYAML(configFile, data); d != nil {
				return fmt.Errorf("read config file: %s", diag.Escape(d.Error()))
			}
		}
		if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
			return fmt.Errorf("read config file %s: %w", configFile, err)
		}
	}
	cfg.File = v.GetString("file")
	cfg.StateDir = v.GetString("state-dir")
	if cfg.StateDir == "" {
		cfg.StateDir = filepath.Join(filepath.Dir(cfg.File), state.DirName)
	}
	return nil
}

// usageError marks a command-line mistake (exit 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// errSilent means the command already reported the problem (exit 1).
var errSilent = errors.New("silent")

// exitError carries an explicit exit code, already reported.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func exitCode(err error, errOut io.Writer) int {
	if err == nil {
		return ExitOK
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if errors.Is(err, errSilent) {
		return ExitError
	}
	var ue usageError
	if errors.As(err, &ue) || isCobraUsage(err) {
		fmt.Fprintf(errOut, "Error: %v\n", err)
		return ExitUsage
	}
	if errors.Is(err, context.Canceled) {
		fmt.Fprintln(errOut, "Interrupted.")
		return ExitError
	}
	fmt.Fprintf(errOut, "Error: %v\n", err)
	return ExitError
}

// isCobraUsage recognises cobra's own argument and command errors, which it
// returns as plain errors.
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "accepts ", "requires at least", "requires at most", "unknown flag", "unknown shorthand flag", "invalid argument"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

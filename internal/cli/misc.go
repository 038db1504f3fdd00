package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"text/template"

	"github.com/spf13/cobra"

	"github.com/aipairpro/orchestrator/internal/spec"
	"github.com/aipairpro/orchestrator/internal/version"
	"github.com/aipairpro/orchestrator/templates"
)

// NewCmdSchema builds `orchestrator schema`.
func NewCmdSchema(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the stack spec's JSON Schema",
		Long: `Print the JSON Schema of stack.yaml. Editors use it for completion and checks:
start stack.yaml with "# yaml-language-server: $schema=<path or URL of the schema>".`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			b, err := spec.JSONSchema()
			if err != nil {
				return err
			}
			_, err = f.IO.Out.Write(append(b, '\n'))
			return err
		},
	}
}

// VersionOptions are the inputs of `orchestrator version`.
type VersionOptions struct {
	IO     *IOStreams
	Output string
}

// NewCmdVersion builds `orchestrator version`.
func NewCmdVersion(f *Factory) *cobra.Command {
	opts := &VersionOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		// No config to read: version must answer fast and anywhere.
		PersistentPreRunE: func(*cobra.Command, []string) error { return nil },
		RunE: func(*cobra.Command, []string) error {
			if err := checkOutput(opts.Output); err != nil {
				return err
			}
			info := version.Get()
			if opts.Output == "json" {
				return json.NewEncoder(opts.IO.Out).Encode(info)
			}
			commit := ""
			if info.Commit != "" {
				commit = ", commit " + info.Commit
			}
			_, err := fmt.Fprintf(opts.IO.Out, "orchestrator %s (%s, %s%s)\n", info.Version, info.GoVersion, info.Platform, commit)
			return err
		},
	}
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "text", "output format: text or json")
	return cmd
}

// InitOptions are the inputs of `orchestrator init`.
type InitOptions struct {
	IO     *IOStreams
	File   string
	Name   string
	Domain string
	// AppImage is the app's image; empty leaves the app section commented.
	AppImage string
	Force    bool
}

// NewCmdInit builds `orchestrator init`.
func NewCmdInit(f *Factory) *cobra.Command {
	opts := &InitOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Write a commented stack.yaml to start from",
		Example: `  orchestrator init --name acme --domain acme.example.com
  orchestrator init -f stacks/prod.yaml`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			opts.File = f.Config().File
			return runInit(opts)
		},
	}
	cmd.Flags().StringVar(&opts.Name, "name", "", "stack name, a DNS label (default: the directory's name)")
	cmd.Flags().StringVar(&opts.Domain, "domain", "", "apex domain (default <name>.localhost)")
	cmd.Flags().StringVar(&opts.AppImage, "app-image", "", "your app's image, pinned (e.g. ghcr.io/acme/app:1.4.2); without it the app section is a commented example")
	cmd.Flags().BoolVar(&opts.Force, "force", false, "overwrite an existing spec")
	return cmd
}

func runInit(opts *InitOptions) error {
	if !opts.Force {
		if _, err := os.Stat(opts.File); err == nil {
			return fmt.Errorf("%s already exists; edit it, or pass --force to overwrite it", opts.File)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	name := opts.Name
	if name == "" {
		abs, err := filepath.Abs(filepath.Dir(opts.File))
		if err != nil {
			return err
		}
		name = spec.ToDNSLabel(filepath.Base(abs))
	}
	if !spec.IsName(name) {
		return usageError{fmt.Errorf("invalid --name %q: not a DNS label (lower case letters, digits and '-'); try %q", name, spec.ToDNSLabel(name))}
	}
	domain := opts.Domain
	if domain == "" {
		domain = name + ".localhost"
	}
	if !spec.IsDomain(domain) {
		return usageError{fmt.Errorf("invalid --domain %q: not a DNS name; use lower-case labels separated by dots, e.g. acme.example.com", domain)}
	}
	raw, err := templates.FS.ReadFile("scaffold/stack.yaml")
	if err != nil {
		return err
	}
	// Values are checked above and quoted where they land: a valid label
	// may still read as another YAML type ("null", "1.5"). Every escape
	// strconv.Quote writes is also a YAML double-quoted escape.
	t, err := template.New("stack.yaml").Funcs(template.FuncMap{"yamlString": strconv.Quote}).Parse(string(raw))
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, map[string]any{"Name": name, "Domain": domain, "Public": spec.PublicDomain(domain), "AppImage": opts.AppImage}); err != nil {
		return err
	}
	// The scaffold must itself be a valid spec; a broken one is our bug.
	if _, ds := spec.Load(opts.File, buf.Bytes()); ds.HasErrors() {
		var msg bytes.Buffer
		_ = ds.WriteText(&msg, nil)
		if opts.AppImage != "" {
			return usageError{fmt.Errorf("invalid --app-image %q:\n%s", opts.AppImage, msg.String())}
		}
		return fmt.Errorf("the generated spec is invalid (name %q, domain %q):\n%s", name, domain, msg.String())
	}
	if dir := filepath.Dir(opts.File); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	if err := os.WriteFile(opts.File, buf.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(opts.IO.Out, "Wrote %s. Next: edit it, then run `orchestrator validate -f %s`.\n", opts.File, opts.File)
	return nil
}

package compose

import (
	"context"
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aipairpro/orchestrator/internal/engine"
	"github.com/aipairpro/orchestrator/internal/model"
)

// writerSeeds are strings a YAML reader could take for something else: the
// issue's findings (numbers once underscores are dropped, a character YAML
// may not hold raw), the other resolver forms, and what compose
// interpolates.
var writerSeeds = []string{
	"-_0x10", "1E_00", "-_1", "\uFFFE", "\uFFFF", "+_1", "1_0e1_0", "-0b1", "0o_7", "-0o7", "0x_1F", ".5_0", "-.5",
	"1_000", "-1_0.5", "1e+_3", "2026-01-01", "2026-1-2 3:4:5", "1:20", "-1:20", ".inf", "-.inf", ".NaN", "-0",
	"yes", "No", "ON", "off", "y", "~", "null", "", " ", "<<", "=", "-", "--", "- x", "? x", ": x", "#x", "a #b", "a: b", "x:",
	"\u2028", "\u2029", "\u0085", "\ufeff", "\ufeffx", "a\u200eb", "\x7f", "\u009b[31m", "\x1b[31m", "\x01", "a\tb", "\t", "\r", "x\r\ny",
	" lead", "trail ", "\n 0\n", "multi\nline\n", "multi\nline", "\nlead\n", "a\n\nb\n", "a\n \nb\n", "  indented\nx\n", "tab\n\tx\n",
	"$HOME", "${X:-y}", "$$", "$", "a$", "{{ x }}", `"q"`, "'s'", `back\slash`, "[a, b]", "{a: b}", "*x", "&x", "!x", "%x", "@x", "`x", "|", ">",
	"ünïcödé ✓", "😀", "\U0010FFFF",
}

// TestWriterKeepsHostileValues renders each seed as an env value, a
// command argument, a healthcheck argument and a label, and loads the file
// back with compose-go: every value must come back unchanged. Before the
// fix "-_0x10" came back as -16, "1E_00" as 1, "-_1" failed compose's
// schema and "\uFFFE" failed to load.
func TestWriterKeepsHostileValues(t *testing.T) {
	dir := t.TempDir()
	for _, s := range writerSeeds {
		t.Run(strings.ToValidUTF8(s, "?"), func(t *testing.T) {
			roundTrip(t, dir, s, s, s)
		})
	}
	// The case as it was reported: two values in one environment.
	t.Run("env E and A", func(t *testing.T) {
		roundTrip(t, dir, "-_0x10", "1E_00", "x")
	})
}

// FuzzWriterRoundTrip: arbitrary env values, command arguments and labels
// are written by our YAML writer and loaded back by compose-go (the loader
// docker compose uses, interpolation included), and must come back
// unchanged. Only what a spec cannot carry is skipped: bytes that are not
// UTF-8 (the YAML parser refuses them) and NUL (validation refuses it).
// The seeds and testdata/fuzz/FuzzWriterRoundTrip run as a normal test.
func FuzzWriterRoundTrip(f *testing.F) {
	for _, s := range writerSeeds {
		f.Add(s, s, s)
	}
	f.Add("-_0x10", "-_1", "\uFFFE")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, env, arg, label string) {
		for _, s := range []string{env, arg, label} {
			if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
				t.Skip("not a value a spec can hold")
			}
		}
		roundTrip(t, dir, env, arg, label)
	})
}

// roundTrip renders one service through the renderer and the writer, with
// env and arg as the spec gives them and label as a label value, then
// loads it back with compose-go.
func roundTrip(t *testing.T, dir, env, arg, label string) {
	t.Helper()
	d := &model.Deployment{Name: "fuzz", Services: []model.Service{{
		Name: "svc", Component: "custom", Image: "busybox:1.36",
		Command: []string{arg},
		Env:     map[string]string{"E": env, "A": arg},
		Health:  &model.Healthcheck{Test: []string{"CMD", arg}},
	}}}
	r := &renderer{d: d, opts: engine.RenderOptions{OutDir: dir, StateDir: dir}, stateRel: ".", arts: &engine.Artifacts{}}
	p, err := r.project()
	require.NoError(t, err)
	p.Services["svc"].Labels["dev.orchestrator.fuzz"] = escape(label)
	y, err := marshal(p)
	require.NoError(t, err)

	logrus.SetOutput(io.Discard)
	got, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  dir,
		ConfigFiles: []types.ConfigFile{{Filename: dir + "/" + ComposeFile, Content: y}},
		Environment: types.Mapping{},
	})
	require.NoError(t, err, "compose-go cannot load what we wrote:\n%s", y)
	svc := got.Services["svc"]
	msg := "written as:\n%s"
	require.NotNil(t, svc.Environment["E"], msg, y)
	assert.Equal(t, env, *svc.Environment["E"], msg, y)
	require.NotNil(t, svc.Environment["A"], msg, y)
	assert.Equal(t, arg, *svc.Environment["A"], msg, y)
	assert.Equal(t, types.ShellCommand{arg}, svc.Command, msg, y)
	require.NotNil(t, svc.HealthCheck, msg, y)
	assert.Equal(t, types.HealthCheckTest{"CMD", arg}, svc.HealthCheck.Test, msg, y)
	assert.Equal(t, label, svc.Labels["dev.orchestrator.fuzz"], msg, y)
}

package main

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/aipairpro/orchestrator/internal/catalog"
	"github.com/aipairpro/orchestrator/internal/spec"
)

var testImages = map[string]string{
	"ORCHESTRATOR_TESTENV_WEB_IMAGE":      "orchestrator-testenv/web:1",
	"ORCHESTRATOR_TESTENV_POSTGRES_IMAGE": "orchestrator-testenv/postgres:15-1",
}

func testOptions() options {
	return options{spec: "../../examples/platform/stack.yaml", tmpl: "../../test/e2e/testdata/platform.yaml.tmpl", httpPort: 18080, httpsPort: 18443}
}

// localExample is the example made to run here.
func localExample(t *testing.T) (*yaml.Node, string) {
	t.Helper()
	doc, err := readYAML(testOptions().spec)
	require.NoError(t, err)
	return doc, makeLocal(doc, testOptions())
}

// build loads doc as orchestrator does, with every check, and returns the
// image of each service it renders.
func build(t *testing.T, doc *yaml.Node) map[string]string {
	t.Helper()
	b, err := encodeYAML(doc)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "stack.yaml")
	require.NoError(t, os.WriteFile(path, b, 0o644))
	st, _, ds := spec.LoadFile(path)
	require.False(t, ds.HasErrors(), "%v\n%s", ds, b)
	dep, ds := catalog.Build(st)
	require.False(t, ds.HasErrors(), "%v", ds)
	out := map[string]string{}
	for _, s := range dep.Services {
		out[s.Name] = s.Image
	}
	return out
}

// planOf is what the image check would report when the images of the
// services in unavailable cannot be pulled.
func planOf(services map[string]string, unavailable ...string) *planChanges {
	p := &planChanges{}
	for _, name := range slices.Sorted(maps.Keys(services)) {
		p.ResourceChanges = append(p.ResourceChanges, struct{ Type, Name string }{"service", name})
	}
	for _, s := range unavailable {
		p.UnavailableImages = append(p.UnavailableImages, unavailableImage{Image: services[s], Services: []string{s}, Reason: "unreachable"})
	}
	return p
}

func TestMakeLocal(t *testing.T) {
	doc, name := localExample(t)
	assert.Equal(t, "acme", name)
	b, err := encodeYAML(doc)
	require.NoError(t, err)
	out := string(b)
	assert.True(t, strings.HasPrefix(out, "# yaml-language-server: $schema=../../schema/stack-v1.json\n"), out)
	assert.Contains(t, out, "# Written by `make run` (hack/run) from ../../examples/platform/stack.yaml for this machine")
	assert.Contains(t, out, "\ndomain: acme.localhost\n")
	assert.Contains(t, out, "\ntls: {mode: internal}\n")
	assert.Contains(t, out, "\nphase1: {http_port: 18080, https_port: 18443}\n")
	assert.NotContains(t, out, "ssh://")
	build(t, doc)
}

// TestEveryServiceHasAStandIn is this machine's case (no registry): every
// service the example renders gets a stand-in, and the result is a valid
// stack whose images are all local.
func TestEveryServiceHasAStandIn(t *testing.T) {
	doc, name := localExample(t)
	services := build(t, doc)
	standIns, all := chooseStandIns(doc.Content[0], planOf(services, slices.Collect(maps.Keys(services))...))
	require.Equal(t, all, standIns)
	require.Len(t, all, len(services))
	require.NoError(t, applyStandIns(testOptions(), doc.Content[0], name, standIns, testImages))
	for svc, image := range build(t, doc) {
		assert.Contains(t, []string{testImages["ORCHESTRATOR_TESTENV_WEB_IMAGE"], testImages["ORCHESTRATOR_TESTENV_POSTGRES_IMAGE"]}, image, "service %s", svc)
	}
	// What the example overrides for other reasons stays.
	assert.Equal(t, "2Gi", get(get(get(get(doc.Content[0], "overrides"), "postiz"), "resources"), "memory").Value)
}

func TestChooseStandIns(t *testing.T) {
	doc, _ := localExample(t)
	services := build(t, doc)
	var platform []string
	for s := range services {
		if s != "app" && s != "worker" {
			platform = append(platform, s)
		}
	}
	slices.Sort(platform)
	for _, c := range []struct {
		name        string
		unavailable []string
		want        []string
	}{
		{"every image can be pulled", nil, nil},
		// A machine with a registry: the example's own images are made up.
		{"only the stack's own images are missing", []string{"worker", "app"}, []string{"app", "worker"}},
		// A real Postiz cannot talk to a stand-in Temporal.
		{"one component's image is missing", []string{"temporal"}, platform},
		{"a component's and the app's", []string{"temporal", "app"}, append([]string{"app"}, platform...)},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, all := chooseStandIns(doc.Content[0], planOf(services, c.unavailable...))
			slices.Sort(c.want)
			assert.Equal(t, c.want, got)
			assert.Len(t, all, len(services))
		})
	}
}

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pgSpec is a small stack on the shared PostgreSQL: database.version and,
// when image is set, the image of postgres and postgres-init.
func pgSpec(name, version, image string) string {
	s := fmt.Sprintf(`version: 1
name: %s
domain: %s.localhost
database: {version: "%s"}
services:
  api: {image: %s, database: true, port: 8080, health: /healthz}
`, name, name, version, webImage)
	if image != "" {
		s += fmt.Sprintf("overrides:\n  postgres: {image: \"%s\"}\n  postgres-init: {image: \"%s\"}\n", image, image)
	}
	return s
}

// derivedImage commits the PostgreSQL stand-in under tag with one
// Dockerfile-style change (ENV, LABEL), so a test can ask for "another
// image" without a registry. It is removed at the end of the test.
func derivedImage(t *testing.T, tag, change string) string {
	t.Helper()
	name := strings.NewReplacer("/", "-", ":", "-").Replace(tag)
	docker(t, "create", "--name", name, pgImage)
	defer docker(t, "rm", "-v", name)
	docker(t, "commit", "--change", change, name, tag)
	t.Cleanup(func() { _ = exec.Command("docker", "image", "rm", "-f", tag).Run() })
	return tag
}

type pgPlanChange struct {
	Address string   `json:"address"`
	Actions []string `json:"actions"`
	Refused string   `json:"refused"`
	Fix     string   `json:"fix"`
}

// postgresChange runs plan --output json and returns its exit code and the
// change of service.postgres.
func postgresChange(t *testing.T, dir string) (int, pgPlanChange) {
	t.Helper()
	r := orch(t, dir, "plan", "--output", "json")
	var p struct {
		ResourceChanges []pgPlanChange `json:"resource_changes"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &p), "plan --output json: %s\n%s", r.stdout, r.stderr)
	for _, c := range p.ResourceChanges {
		if c.Address == "service.postgres" {
			return r.code, c
		}
	}
	t.Fatalf("the plan has no service.postgres: %s", r.stdout)
	return 0, pgPlanChange{}
}

// TestPGMajorChangeIsRefused: a PostgreSQL of another major than the data in
// the existing volume is refused by plan and up, with what to do; the same
// major is not. The stand-in runs PostgreSQL 15, so the data on disk is 15
// whatever database.version says; the desired major comes from the image
// (PG_MAJOR, else its postgres --version), else from database.version when
// the image is not on the engine (as right after the spec names a new one).
func TestPGMajorChangeIsRefused(t *testing.T) {
	const name = "e2epg"
	const volume = name + "_postgres-data"
	dir := newStack(t, pgSpec(name, "17", pgImage))
	writeSpec := func(spec string) {
		t.Helper()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "stack.yaml"), []byte(spec), 0o644))
	}
	requireUp(t, dir, "--skip-preflight")
	requireNoChanges(t, dir)
	require.Equal(t, "15", docker(t, "exec", name+"-postgres-1", "cat", "/var/lib/postgresql/data/PG_VERSION"))
	postgresID := docker(t, "inspect", "-f", "{{.Id}}", name+"-postgres-1")
	ids := containerIDs(t, name)

	t.Run("a new image of the same major is an update, not refused", func(t *testing.T) {
		// No PG_MAJOR: the major comes from the image's postgres --version.
		writeSpec(pgSpec(name, "17", derivedImage(t, "orchestrator-testenv/postgres:e2e-samemajor", "LABEL e2e=samemajor")))
		code, ch := postgresChange(t, dir)
		assert.Equal(t, 0, code)
		assert.Equal(t, []string{"update"}, ch.Actions)
		assert.Empty(t, ch.Refused)
	})

	t.Run("database.version 16 on PostgreSQL 15 data is refused by plan and up", func(t *testing.T) {
		// postgres:16.10 is not on the engine (no registry here, as on a
		// host that has not pulled it yet): database.version decides.
		writeSpec(pgSpec(name, "16", ""))
		want := fmt.Sprintf(`volume %s holds PostgreSQL 15 data; the spec asks for PostgreSQL 16 (image postgres:16.10, per database.version "16"), and a server of another major cannot read that data directory`, volume)

		r := orch(t, dir, "plan")
		assert.Equal(t, 1, r.code, r.stdout+r.stderr)
		assert.Contains(t, r.stdout, "~ service.postgres will be updated: image changed")
		assert.Contains(t, r.stdout, "    refused: "+want+"\n")
		assert.Contains(t, r.stdout, `    fix: set database.version back to "15"`)
		assert.Contains(t, r.stdout, "Refused: 1; nothing will be applied.")
		assert.Contains(t, r.stderr, "Error: refused, nothing applied: service.postgres: "+want)

		code, ch := postgresChange(t, dir)
		assert.Equal(t, 1, code)
		assert.Equal(t, want, ch.Refused)
		for _, step := range []string{
			"orchestrator down",
			fmt.Sprintf("docker run -d --name %s-pg-old -v %s:/var/lib/postgresql/data %s", name, volume, pgImage),
			"pg_dumpall -U postgres' > " + name + "-pg15.sql)",
			"docker volume create " + volume + "-pg15",
			"docker volume rm " + volume + "\n",
			fmt.Sprintf("docker volume create --label com.docker.compose.project=%s --label com.docker.compose.volume=postgres-data --label dev.orchestrator.stack=%s %s\n", name, name, volume),
			fmt.Sprintf("docker run -d --name %s-pg-new -e POSTGRES_PASSWORD=restore-only -v %s:/var/lib/postgresql/data postgres:16.10", name, volume),
			"psql -q -o /dev/null -U postgres -d postgres' < " + name + "-pg15.sql",
			"orchestrator up",
		} {
			assert.Contains(t, ch.Fix, step, "fix lacks a step")
		}

		r = orch(t, dir, "up", "--progress", "plain", "--skip-preflight")
		assert.Equal(t, 1, r.code, r.stdout+r.stderr)
		assert.Contains(t, r.stderr, "refused: "+want)
		assert.Contains(t, r.stderr, "Error: refused, nothing applied: service.postgres")
		assert.Equal(t, postgresID, docker(t, "inspect", "-f", "{{.Id}}", name+"-postgres-1"), "up recreated postgres")
		assert.Equal(t, ids, containerIDs(t, name), "up changed containers")
		assert.Equal(t, "running", docker(t, "inspect", "-f", "{{.State.Status}}", name+"-postgres-1"))
	})

	t.Run("an image of an older major is refused too", func(t *testing.T) {
		// PG_MAJOR, as official images set it, beats database.version.
		image := derivedImage(t, "orchestrator-testenv/postgres:e2e-pg14", "ENV PG_MAJOR=14")
		writeSpec(pgSpec(name, "17", image))
		code, ch := postgresChange(t, dir)
		assert.Equal(t, 1, code)
		assert.Equal(t, fmt.Sprintf(`volume %s holds PostgreSQL 15 data; the spec asks for PostgreSQL 14 (image %s, per the image's PG_MAJOR), and a server of another major cannot read that data directory`, volume, image), ch.Refused)
		r := orch(t, dir, "up", "--progress", "quiet", "--skip-preflight")
		assert.Equal(t, 1, r.code, r.stdout+r.stderr)
		assert.Equal(t, ids, containerIDs(t, name), "up changed containers")
	})

	t.Run("the spec restored, the plan is empty and nothing was touched", func(t *testing.T) {
		writeSpec(pgSpec(name, "17", pgImage))
		requireNoChanges(t, dir)
		assert.Equal(t, ids, containerIDs(t, name))
		assert.Empty(t, docker(t, "ps", "-aq", "--filter", "label=dev.orchestrator.helper"), "a helper container was left behind")
	})
}

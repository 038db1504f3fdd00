package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// The CI recipes in examples/ci/ are run here as their CI would run them:
// each GitHub Actions `run:` step with `shell: bash` (bash --noprofile
// --norc -eo pipefail), each GitLab job's before_script and script lines as
// one bash script with -eo pipefail, in a fresh checkout of a stack whose
// state comes from the CI's secret store (STACK_STATE, made with the command
// the recipes document). Only what needs the CI's own services is left out,
// and the tests check that it is exactly that: installing orchestrator (the
// binary under test is on PATH instead) and jq, and posting the comment
// (GitHub's API).

// ciSpec is a small stack with a secret taken from the environment, as the
// recipes pass OPENAI_API_KEY.
func ciSpec(name string) string {
	return strings.Replace(smallSpec(name), "database: true, port: 8080", "database: true, secrets: [OPENAI_API_KEY], port: 8080", 1)
}

// ciRun is one CI job's environment: the checkout and what the CI sets.
type ciRun struct {
	dir string
	env []string
}

// newCIRun makes the state where an operator keeps it (orchestrator
// render), stores it the way the recipes say (STACK_STATE), and returns a
// fresh checkout holding only the spec, with the CI's environment.
func newCIRun(t *testing.T, name string) *ciRun {
	t.Helper()
	requireJQ(t)
	spec := ciSpec(name)
	operator := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(operator, "stack.yaml"), []byte(spec), 0o644))
	r := orch(t, operator, "render", "--phase=1")
	require.Equal(t, 0, r.code, r.stderr)
	// The command the recipes' header gives, up to the secret store.
	cmd := exec.Command("bash", "-eo", "pipefail", "-c", "tar -C .orchestrator -cz secrets | base64 -w0")
	cmd.Dir = operator
	out, err := cmd.Output()
	require.NoError(t, err)
	home := t.TempDir() // the ssh step writes ~/.ssh
	run := &ciRun{dir: newStack(t, spec)}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ORCHESTRATOR_") && !strings.HasPrefix(kv, "HOME=") && !strings.HasPrefix(kv, "PATH=") {
			run.env = append(run.env, kv)
		}
	}
	run.env = append(run.env,
		"HOME="+home,
		"PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"),
		"STACK_STATE="+string(out),
		"OPENAI_API_KEY=sk-ci-not-a-real-key",
		"SSH_KNOWN_HOSTS=",
	)
	// The checkout uses the operator's secrets, not new ones.
	t.Cleanup(func() {
		got, err := os.ReadFile(filepath.Join(run.dir, ".orchestrator", "secrets", "postgres-password"))
		if err == nil {
			assert.Equal(t, secret(t, operator, "postgres-password"), string(got), "the checkout's state is not the stored one")
		}
	})
	return run
}

// requireJQ makes sure jq is there: the recipes summarise the plan with it
// (GitHub's runners have it; the GitLab recipe installs it).
func requireJQ(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("jq"); err == nil {
		return
	}
	cmd := exec.Command("bash", "-c", "set -euo pipefail; TESTENV_NAME=ci; . ../../hack/testenv/lib.sh; apt_install jq")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	require.NoError(t, cmd.Run(), "installing jq")
}

// freshCheckout leaves only the spec in the checkout, as each CI job
// starts: no state, no rendered files, no plan of an earlier job.
func (c *ciRun) freshCheckout(t *testing.T) {
	t.Helper()
	entries, err := os.ReadDir(c.dir)
	require.NoError(t, err)
	for _, e := range entries {
		if e.Name() != "stack.yaml" {
			require.NoError(t, os.RemoveAll(filepath.Join(c.dir, e.Name())))
		}
	}
}

// bash runs script as CI runs a step: bash -eo pipefail, in the checkout.
func (c *ciRun) bash(t *testing.T, script string, extra ...string) result {
	t.Helper()
	f := filepath.Join(t.TempDir(), "step.sh")
	require.NoError(t, os.WriteFile(f, []byte(script), 0o644))
	cmd := exec.Command("bash", "--noprofile", "--norc", "-eo", "pipefail", f)
	cmd.Dir = c.dir
	cmd.Env = append(append([]string{}, c.env...), extra...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("bash: %v", err)
	}
	return result{code, out.String(), errb.String()}
}

// invokesOrchestrator matches a shell line that runs orchestrator (not one
// that only names it, as go install and messages do).
var invokesOrchestrator = regexp.MustCompile(`^\s*orchestrator\s`)

type ghStep struct {
	Name string            `yaml:"name"`
	ID   string            `yaml:"id"`
	Uses string            `yaml:"uses"`
	Run  string            `yaml:"run"`
	Env  map[string]string `yaml:"env"`
}

type ghWorkflow struct {
	On       map[string]any `yaml:"on"`
	Defaults struct {
		Run struct {
			Shell string `yaml:"shell"`
		} `yaml:"run"`
	} `yaml:"defaults"`
	Jobs map[string]struct {
		If    string   `yaml:"if"`
		Steps []ghStep `yaml:"steps"`
	} `yaml:"jobs"`
}

// ghJob runs the runnable steps of one job of the workflow in order, as
// Actions does: the first failing step ends the job. It returns the step
// that failed ("" when none) and its result, and the job's step outputs.
func (c *ciRun) ghJob(t *testing.T, wf *ghWorkflow, job string, extra ...string) (failed string, res result, outputs map[string]string) {
	t.Helper()
	j, ok := wf.Jobs[job]
	require.True(t, ok, "the workflow has no job %q", job)
	c.freshCheckout(t)
	tmp := t.TempDir()
	ghOutput, summary, ghPath := filepath.Join(tmp, "output"), filepath.Join(tmp, "summary"), filepath.Join(tmp, "path")
	outputs = map[string]string{}
	var log result // the job's log, when it succeeds
	for _, s := range j.Steps {
		switch {
		case s.Uses != "":
			continue // checkout and setup-go: the checkout is c.dir
		case strings.Contains(s.Run, "go install "):
			continue // the binary under test is on PATH
		case strings.HasPrefix(strings.TrimSpace(s.Run), "gh "):
			require.FileExists(t, filepath.Join(c.dir, "plan.md"), "step %q posts a file no step wrote", s.Name)
			continue // GitHub's API
		}
		require.NoError(t, os.WriteFile(ghOutput, nil, 0o644))
		env := append([]string{"GITHUB_OUTPUT=" + ghOutput, "GITHUB_STEP_SUMMARY=" + summary, "GITHUB_PATH=" + ghPath}, extra...)
		r := c.bash(t, s.Run, env...)
		if r.code != 0 {
			return s.Name, r, outputs
		}
		log.stdout += r.stdout
		log.stderr += r.stderr
		b, err := os.ReadFile(ghOutput)
		require.NoError(t, err)
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				outputs[s.ID+"."+k] = v
			}
		}
	}
	return "", log, outputs
}

func readGHWorkflow(t *testing.T) *ghWorkflow {
	t.Helper()
	b, err := os.ReadFile("../../examples/ci/github-actions.yml")
	require.NoError(t, err)
	var wf ghWorkflow
	require.NoError(t, yaml.Unmarshal(b, &wf))
	require.Equal(t, "bash", wf.Defaults.Run.Shell, "the steps' exit-code handling relies on bash -eo pipefail")
	require.Contains(t, wf.On, "pull_request")
	require.Contains(t, wf.Jobs["plan"].If, "pull_request")
	require.Contains(t, wf.Jobs["up"].If, "refs/heads/main")
	// Every command the recipe runs is one this test runs.
	var commands []string
	for _, job := range []string{"plan", "up"} {
		for _, s := range wf.Jobs[job].Steps {
			for _, line := range strings.Split(s.Run, "\n") {
				if invokesOrchestrator.MatchString(line) && !strings.HasPrefix(strings.TrimSpace(s.Run), "gh ") {
					commands = append(commands, strings.TrimSpace(line))
				}
			}
		}
	}
	require.Equal(t, []string{
		"orchestrator validate",
		"orchestrator plan --detailed-exitcode --output json > plan.json || status=$?",
		"orchestrator validate",
		"orchestrator render --phase=1 > /dev/null",
		"orchestrator up --progress plain",
	}, commands)
	return &wf
}

func TestCIGitHubActions(t *testing.T) {
	const name = "e2ecigh"
	wf := readGHWorkflow(t)
	c := newCIRun(t, name)

	// A pull request against nothing deployed: changes (exit 2) pass.
	failed, r, out := c.ghJob(t, wf, "plan")
	require.Empty(t, failed, "step %q failed: %s%s", failed, r.stdout, r.stderr)
	assert.Equal(t, "2", out["plan.exitcode"])
	md, err := os.ReadFile(filepath.Join(c.dir, "plan.md"))
	require.NoError(t, err)
	assert.Contains(t, string(md), "### orchestrator plan: stack `"+name+"`")
	assert.Contains(t, string(md), "to create, 0 to update, 0 to delete**")
	assert.Contains(t, string(md), "- create `service.api`: missing")
	assert.Empty(t, containerIDs(t, name), "the plan job changed the engine")

	// main: up, then a pull request with nothing to change (exit 0).
	failed, r, _ = c.ghJob(t, wf, "up")
	require.Empty(t, failed, "step %q failed: %s%s", failed, r.stdout, r.stderr)
	assert.Contains(t, r.stdout, "Stack "+name+" is up")
	assert.NotEmpty(t, containerIDs(t, name))
	failed, r, out = c.ghJob(t, wf, "plan")
	require.Empty(t, failed, "step %q failed: %s%s", failed, r.stdout, r.stderr)
	assert.Equal(t, "0", out["plan.exitcode"])
	md, err = os.ReadFile(filepath.Join(c.dir, "plan.md"))
	require.NoError(t, err)
	assert.Contains(t, string(md), "No changes")

	// An error (exit 1) fails the plan step, and the job.
	failed, r, _ = c.ghJob(t, wf, "plan", "DOCKER_HOST=unix:///nonexistent.sock")
	assert.Equal(t, "Plan", failed)
	assert.Equal(t, 1, r.code, r.stderr)

	// A spec that needs a secret the stored state lacks is not applied.
	before := containerIDs(t, name)
	spec, err := os.ReadFile(filepath.Join(c.dir, "stack.yaml"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(c.dir, "stack.yaml"), append(spec, "components: {portainer: {enabled: true}}\n"...), 0o644))
	failed, r, _ = c.ghJob(t, wf, "up")
	assert.Equal(t, "The stored state has every secret the spec needs", failed)
	assert.Contains(t, r.stdout, "the spec needs secrets that STACK_STATE lacks: portainer-admin-password")
	assert.Equal(t, before, containerIDs(t, name), "up ran although the state lacked a secret")
	require.NoError(t, os.WriteFile(filepath.Join(c.dir, "stack.yaml"), spec, 0o644))
}

// glJob is one GitLab job with its template's before_script.
type glJob struct {
	Extends      string           `yaml:"extends"`
	BeforeScript []string         `yaml:"before_script"`
	Script       []string         `yaml:"script"`
	Rules        []map[string]any `yaml:"rules"`
	Artifacts    struct {
		Reports map[string]string `yaml:"reports"`
	} `yaml:"artifacts"`
}

func readGitLab(t *testing.T) map[string]glJob {
	t.Helper()
	b, err := os.ReadFile("../../examples/ci/gitlab-ci.yml")
	require.NoError(t, err)
	var jobs map[string]glJob
	require.NoError(t, yaml.Unmarshal(b, &jobs))
	for _, name := range []string{"orchestrator-plan", "orchestrator-up"} {
		j := jobs[name]
		require.NotEmpty(t, j.Script, name)
		require.Equal(t, ".orchestrator", j.Extends, name)
		j.BeforeScript = jobs[j.Extends].BeforeScript
		jobs[name] = j
	}
	assert.Contains(t, fmt.Sprint(jobs["orchestrator-plan"].Rules), "merge_request_event")
	assert.Contains(t, fmt.Sprint(jobs["orchestrator-up"].Rules), "CI_DEFAULT_BRANCH")
	return jobs
}

// glJob runs a job's before_script and script as GitLab's bash shell does:
// one script, stopping at the first failing line.
func (c *ciRun) glJob(t *testing.T, j glJob, extra ...string) result {
	t.Helper()
	var lines []string
	skipped := 0
	for _, line := range append(append([]string{}, j.BeforeScript...), j.Script...) {
		if strings.Contains(line, "go install ") || strings.Contains(line, "apt-get ") {
			skipped++ // the binary under test and jq are on PATH
			continue
		}
		lines = append(lines, line)
	}
	require.Equal(t, 2, skipped, "the test leaves out exactly the two installs")
	c.freshCheckout(t)
	return c.bash(t, strings.Join(lines, "\n")+"\n", extra...)
}

func TestCIGitLab(t *testing.T) {
	const name = "e2ecigl"
	jobs := readGitLab(t)
	c := newCIRun(t, name)
	assert.Equal(t, "plan-summary.json", jobs["orchestrator-plan"].Artifacts.Reports["terraform"])
	summary := func() map[string]int {
		b, err := os.ReadFile(filepath.Join(c.dir, "plan-summary.json"))
		require.NoError(t, err)
		var s map[string]int
		require.NoError(t, json.Unmarshal(b, &s))
		return s
	}

	r := c.glJob(t, jobs["orchestrator-plan"])
	require.Equal(t, 0, r.code, "changes (exit 2) must not fail the job:\n%s%s", r.stdout, r.stderr)
	assert.Contains(t, r.stdout, "orchestrator plan: stack "+name)
	assert.Contains(t, r.stdout, "  create service.api: missing")
	s := summary()
	assert.Positive(t, s["create"])
	assert.Zero(t, s["update"])
	assert.Zero(t, s["delete"])
	assert.Empty(t, containerIDs(t, name), "the plan job changed the engine")

	r = c.glJob(t, jobs["orchestrator-up"])
	require.Equal(t, 0, r.code, "%s%s", r.stdout, r.stderr)
	assert.Contains(t, r.stdout, "Stack "+name+" is up")

	r = c.glJob(t, jobs["orchestrator-plan"])
	require.Equal(t, 0, r.code, "%s%s", r.stdout, r.stderr)
	assert.Contains(t, r.stdout, "No changes")
	assert.Equal(t, map[string]int{"create": 0, "update": 0, "delete": 0}, summary())

	r = c.glJob(t, jobs["orchestrator-plan"], "DOCKER_HOST=unix:///nonexistent.sock")
	assert.Equal(t, 1, r.code, "an error (exit 1) must fail the job:\n%s%s", r.stdout, r.stderr)
	assert.NotContains(t, r.stdout, "orchestrator plan: stack", "the job went on after the error")
}

package kubernetes_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The test cluster (hack/testenv/kube-cluster.sh) is shared by every test
// of this binary: started by the first test that needs it, and stopped by
// TestMain at the end if this binary started it, unless
// ORCHESTRATOR_TESTENV_KUBE_KEEP=1. A cluster that cannot start fails the
// tests that need it; they never skip.
var shared struct {
	once    sync.Once
	k       kube
	err     error
	started bool

	imagesOnce sync.Once
	images     standInImages
	imagesErr  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.started && os.Getenv("ORCHESTRATOR_TESTENV_KUBE_KEEP") == "" {
		start := time.Now()
		if out, err := exec.Command(clusterScript(), "down").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "kube-cluster.sh down: %v\n%s", err, out)
			code = 1
		} else {
			fmt.Fprintf(os.Stderr, "test cluster stopped in %s\n", time.Since(start).Round(100*time.Millisecond))
		}
	}
	os.Exit(code)
}

func clusterScript() string {
	p, err := filepath.Abs("../../../hack/testenv/kube-cluster.sh")
	if err != nil {
		panic(err)
	}
	return p
}

// sharedCluster starts the cluster once (a no-op when it already answers;
// the first run on a machine builds it, about 10 minutes).
func sharedCluster(t *testing.T) kube {
	t.Helper()
	shared.once.Do(func() {
		script := clusterScript()
		wasUp := exec.Command(script, "env").Run() == nil
		cmd := exec.Command(script, "up")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		start := time.Now()
		if err := cmd.Run(); err != nil {
			shared.err = fmt.Errorf("%s up: %v\n%s", script, err, stderr.String())
			// It may have started part-way: let TestMain stop it.
			shared.started = !wasUp
			return
		}
		shared.started = !wasUp
		for _, line := range strings.Split(stdout.String(), "\n") {
			if v, ok := strings.CutPrefix(line, "KUBECONFIG="); ok {
				shared.k.kubeconfig = v
			}
			if v, ok := strings.CutPrefix(line, "ORCHESTRATOR_TESTENV_KUBECTL="); ok {
				shared.k.kubectl = v
			}
		}
		if shared.k.kubeconfig == "" || shared.k.kubectl == "" {
			shared.err = fmt.Errorf("kube-cluster.sh up printed no KUBECONFIG or kubectl: %s", stdout.String())
		}
		fmt.Fprintf(os.Stderr, "test cluster ready in %s (already running: %v)\n", time.Since(start).Round(100*time.Millisecond), wasUp)
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.k
}

// standInImages are the images of hack/testenv, imported into the
// cluster's containerd (it has no registry to pull from).
type standInImages struct {
	web, postgres string
}

// standIns builds the stand-in images when the Docker engine lacks them
// (hack/testenv/images.sh) and loads them into the cluster, once.
func standIns(t *testing.T) standInImages {
	t.Helper()
	sharedCluster(t)
	shared.imagesOnce.Do(func() {
		start := time.Now()
		script, err := filepath.Abs("../../../hack/testenv/images.sh")
		if err != nil {
			shared.imagesErr = err
			return
		}
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(script)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			shared.imagesErr = fmt.Errorf("%s: %v\n%s", script, err, stderr.String())
			return
		}
		for _, line := range strings.Split(stdout.String(), "\n") {
			if v, ok := strings.CutPrefix(line, "ORCHESTRATOR_TESTENV_WEB_IMAGE="); ok {
				shared.images.web = v
			}
			if v, ok := strings.CutPrefix(line, "ORCHESTRATOR_TESTENV_POSTGRES_IMAGE="); ok {
				shared.images.postgres = v
			}
		}
		if shared.images.web == "" || shared.images.postgres == "" {
			shared.imagesErr = fmt.Errorf("images.sh printed no images: %s", stdout.String())
			return
		}
		out, err := exec.Command(clusterScript(), "load-image", shared.images.web, shared.images.postgres).CombinedOutput()
		if err != nil {
			shared.imagesErr = fmt.Errorf("kube-cluster.sh load-image: %v\n%s", err, out)
			return
		}
		fmt.Fprintf(os.Stderr, "stand-in images in the cluster after %s\n", time.Since(start).Round(100*time.Millisecond))
	})
	if shared.imagesErr != nil {
		t.Fatal(shared.imagesErr)
	}
	return shared.images
}

// runEnv runs kubectl with an environment and stdin; it returns stdout
// and stderr.
func (k kube) runEnv(t *testing.T, env []string, stdin []byte, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(k.kubectl, append([]string{"--kubeconfig", k.kubeconfig, "--request-timeout", "60s"}, args...)...)
	cmd.Env = env
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

package catalog

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aipairpro/orchestrator/internal/model"
	"github.com/aipairpro/orchestrator/internal/spec"
)

func service(t *testing.T, dep *model.Deployment, name string) *model.Service {
	t.Helper()
	for i := range dep.Services {
		if dep.Services[i].Name == name {
			return &dep.Services[i]
		}
	}
	return nil
}

func kestraConfig(t *testing.T, dep *model.Deployment) string {
	t.Helper()
	for _, s := range dep.Secrets {
		if s.Name == "kestra-application.yml" {
			return s.Template
		}
	}
	t.Fatal("no Kestra configuration")
	return ""
}

// By default Kestra has no Docker socket, runs as its image's user and
// keeps script tasks' working directory under /app; the Docker task
// runner (root, the host's socket, a host directory under /var/lib) is an
// opt-in.
func TestKestraDockerTasksAreOptIn(t *testing.T) {
	dep := platform(t, "")
	k := service(t, dep, "kestra")
	require.NotNil(t, k)
	assert.Empty(t, k.User, "Kestra runs as its image's user")
	for _, v := range k.Volumes {
		assert.Empty(t, v.HostPath, "Kestra mounts %s from the host", v.HostPath)
	}
	assert.Contains(t, kestraConfig(t, dep), "\n  tasks:\n    tmp-dir:\n      path: /app/wd/tmp\n")
	init := service(t, dep, "kestra-init")
	require.NotNil(t, init, "the storage volume is made the image user's")
	assert.True(t, init.OneShot)
	assert.True(t, init.Isolated, "kestra-init needs no network")
	assert.Equal(t, []model.VolumeMount{{Volume: "kestra-data", Target: "/app/storage"}}, init.Volumes)
	assert.Contains(t, k.DependsOn, model.Dependency{Service: "kestra-init", Condition: model.Completed})

	raw, err := os.ReadFile(filepath.Join("..", "..", "examples", "platform", "stack.yaml"))
	require.NoError(t, err)
	src := strings.Replace(string(raw), "kestra:    {enabled: true}", "kestra:    {enabled: true, docker_tasks: true}", 1)
	_, ds := spec.Load("stack.yaml", []byte(src))
	require.Len(t, ds, 1, "%v", ds)
	assert.Equal(t, "components.kestra.docker_tasks", ds[0].Path)
	assert.Equal(t, "Kestra gets the host's Docker socket, read-write, and runs as root: anyone who can edit a flow controls the host", ds[0].Summary)
	require.NotNil(t, ds[0].Subject)
	assert.Equal(t, 20, ds[0].Subject.Line)
	dep, msgs := build(t, src)
	require.NotNil(t, dep, msgs)
	k = service(t, dep, "kestra")
	assert.Equal(t, "0", k.User)
	assert.Contains(t, k.Volumes, model.VolumeMount{HostPath: "/var/run/docker.sock", Target: "/var/run/docker.sock"})
	assert.Contains(t, k.Volumes, model.VolumeMount{HostPath: "/var/lib/orchestrator/acme/kestra-wd", Target: "/var/lib/orchestrator/acme/kestra-wd"})
	assert.Contains(t, kestraConfig(t, dep), "path: /var/lib/orchestrator/acme/kestra-wd/tmp\n")
	assert.Nil(t, service(t, dep, "kestra-init"))
	for _, s := range dep.Services {
		for _, v := range s.Volumes {
			assert.False(t, strings.HasPrefix(v.HostPath, "/tmp"), "%s mounts %s", s.Name, v.HostPath)
		}
	}
}

package preflight

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/aipairpro/orchestrator/internal/model"
)

func TestCheck(t *testing.T) {
	dep := &model.Deployment{
		Services: []model.Service{
			{Name: "app", MemoryBytes: 1 << 30, Replicas: 2},
			{Name: "tracardi-elasticsearch", MemoryBytes: 2 << 30, Replicas: 1},
		},
		Volumes: []model.Volume{{Name: "postgres-data", SizeBytes: 20 << 30}},
	}
	n := NeedsOf(dep)
	assert.Equal(t, int64(4<<30), n.Memory)
	assert.Equal(t, int64(30<<30), n.Disk)
	assert.Equal(t, []string{"tracardi-elasticsearch"}, n.Elasticsearch)

	tests := map[string]struct {
		facts Facts
		want  []string // check names, "~" prefix for warnings
	}{
		"all good":           {Facts{MemTotal: 8 << 30, MemAvailable: 6 << 30, DiskFree: 100 << 30, MaxMapCount: 262144}, nil},
		"busy host":          {Facts{MemTotal: 8 << 30, MemAvailable: 1 << 30, DiskFree: 100 << 30, MaxMapCount: 262144}, []string{"~free memory"}},
		"small host":         {Facts{MemTotal: 2 << 30, DiskFree: 10 << 30, MaxMapCount: 262144}, []string{"memory", "disk"}},
		"es setting too low": {Facts{MemTotal: 8 << 30, DiskFree: 100 << 30, MaxMapCount: 65530}, []string{"vm.max_map_count"}},
		"remote, unknowns":   {Facts{MemTotal: 8 << 30, DiskFree: -1, MaxMapCount: -1, MaxMapCountUnread: "no image"}, []string{"~vm.max_map_count"}},
		"remote, read, low":  {Facts{MemTotal: 8 << 30, DiskFree: -1, MaxMapCount: 65530}, []string{"vm.max_map_count"}},
		"remote, read, ok":   {Facts{MemTotal: 8 << 30, DiskFree: -1, MaxMapCount: 262144}, nil},
		"just below":         {Facts{MemTotal: 8 << 30, DiskFree: -1, MaxMapCount: 262143}, []string{"vm.max_map_count"}},
		"far above":          {Facts{MemTotal: 8 << 30, DiskFree: -1, MaxMapCount: 1 << 30}, nil},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			var got []string
			for _, p := range Check(tt.facts, n) {
				assert.NotEmpty(t, p.Fix)
				if p.Warning {
					got = append(got, "~"+p.Check)
				} else {
					got = append(got, p.Check)
				}
			}
			assert.Equal(t, tt.want, got)
		})
	}
	assert.Equal(t, int64(5<<30), memAvailable("MemTotal:       24000000 kB\nMemAvailable:    5242880 kB\n"))
	assert.Equal(t, int64(-1), memAvailable("MemTotal: 1 kB\n"))
	ps := Check(Facts{MemTotal: 8 << 30, DiskFree: 100 << 30, MaxMapCount: 65530}, n)
	assert.Equal(t, "vm.max_map_count is 65530; Elasticsearch (tracardi-elasticsearch) needs at least 262144", ps[0].Summary)
	assert.Equal(t, "sudo sysctl -w vm.max_map_count=262144 && echo vm.max_map_count=262144 | sudo tee /etc/sysctl.d/99-elasticsearch.conf", ps[0].Fix)
	ps = Check(Facts{MemTotal: 8 << 30, DiskFree: -1, MaxMapCount: -1, MaxMapCountUnread: "none of the stack's images is on the engine yet"}, n)
	assert.Equal(t, "vm.max_map_count could not be read (none of the stack's images is on the engine yet); Elasticsearch (tracardi-elasticsearch) needs at least 262144", ps[0].Summary)
	// Without Elasticsearch the setting does not matter, known or not.
	assert.Empty(t, Check(Facts{MemTotal: 8 << 30, DiskFree: -1, MaxMapCount: 65530}, Needs{Memory: 1 << 30}))
}

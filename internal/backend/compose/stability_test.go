package compose

import (
	"testing"
	"time"

	"github.com/docker/compose/v5/pkg/api"
	"github.com/moby/moby/api/types/container"
	"github.com/stretchr/testify/assert"
)

func TestJudge(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(d time.Duration) func() time.Time { return func() time.Time { return start.Add(d) } }
	const window = 5 * time.Second
	running := observation{status: container.StateRunning, startedAt: start}
	with := func(edit func(*observation)) observation {
		o := running
		edit(&o)
		return o
	}
	tests := []struct {
		name string
		o    observation
		now  func() time.Time
		want verdict
		wait time.Duration
	}{
		{"no healthcheck, just started: watched for the rest of the window", running, at(2 * time.Second), settling, 3 * time.Second},
		{"no healthcheck, ran the whole window", running, at(window), settled, 0},
		{"no healthcheck, long up", running, at(time.Hour), settled, 0},
		{"healthcheck, just started: compose waited for healthy", with(func(o *observation) { o.healthcheck, o.health = true, "healthy" }), at(time.Second), settled, 0},
		{"healthcheck, restarted by the engine just now", with(func(o *observation) { o.healthcheck, o.restarts = true, 2 }), at(time.Second), settling, 4 * time.Second},
		{"healthcheck, restarted long ago", with(func(o *observation) { o.healthcheck, o.restarts = true, 2 }), at(time.Minute), settled, 0},
		{"restarting, no healthcheck", with(func(o *observation) { o.status = container.StateRestarting }), at(time.Hour), crashing, 0},
		{"restarting, with a healthy healthcheck", with(func(o *observation) { o.status, o.healthcheck, o.health = container.StateRestarting, true, "healthy" }), at(time.Hour), crashing, 0},
		{"long-running, exited", with(func(o *observation) { o.status = container.StateExited }), at(time.Hour), crashing, 0},
		{"long-running, dead", with(func(o *observation) { o.status = container.StateDead }), at(time.Hour), crashing, 0},
		{"one-shot, exited: Explain judges its exit code", with(func(o *observation) { o.oneShot, o.status, o.exitCode = true, container.StateExited, 1 }), at(time.Hour), settled, 0},
		{"one-shot, running", with(func(o *observation) { o.oneShot = true }), at(time.Second), settled, 0},
		{"created: Explain's to report", with(func(o *observation) { o.status = container.StateCreated }), at(time.Second), settled, 0},
		{"engine clock behind ours: a start in the future is watched the whole window", running, at(-3 * time.Second), settling, 8 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, wait := judge(tt.o, tt.now, window)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.wait, wait)
		})
	}
}

func TestRestarted(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	before := observation{status: container.StateRunning, startedAt: start, restarts: 1}
	tests := []struct {
		name  string
		after observation
		want  bool
	}{
		{"same", before, false},
		{"restart counted", observation{status: container.StateRunning, startedAt: start.Add(2 * time.Second), restarts: 2}, true},
		{"restarting now", observation{status: container.StateRestarting, restarts: 2}, true},
		{"exited", observation{status: container.StateExited, restarts: 1}, true},
		{"started again, count reset by a start by hand", observation{status: container.StateRunning, startedAt: start.Add(time.Second)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, restarted(before, tt.after))
		})
	}
}

func TestObservationOK(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	soon := func() time.Time { return start.Add(time.Second) }
	later := func() time.Time { return start.Add(time.Minute) }
	tests := []struct {
		name string
		o    observation
		now  func() time.Time
		want bool
	}{
		{"running, no healthcheck, never restarted, just started", observation{status: container.StateRunning, startedAt: start}, nil, true},
		{"running, healthy", observation{status: container.StateRunning, healthcheck: true, health: "healthy", startedAt: start}, nil, true},
		{"running, starting", observation{status: container.StateRunning, healthcheck: true, health: "starting", startedAt: start}, nil, false},
		{"running, unhealthy", observation{status: container.StateRunning, healthcheck: true, health: "unhealthy", startedAt: start}, nil, false},
		{"crash loop between two crashes", observation{status: container.StateRunning, restarts: 4, startedAt: start}, soon, false},
		{"healthy but restarted just now", observation{status: container.StateRunning, healthcheck: true, health: "healthy", restarts: 1, startedAt: start}, soon, false},
		{"restarted once, stable since", observation{status: container.StateRunning, restarts: 1, startedAt: start}, later, true},
		{"restarting", observation{status: container.StateRestarting, restarts: 4}, later, false},
		{"long-running, exited 0", observation{status: container.StateExited}, later, false},
		{"paused", observation{status: container.StatePaused, startedAt: start}, later, false},
		{"one-shot, completed", observation{oneShot: true, status: container.StateExited}, nil, true},
		{"one-shot, failed", observation{oneShot: true, status: container.StateExited, exitCode: 1}, nil, false},
		{"one-shot, still running", observation{oneShot: true, status: container.StateRunning, startedAt: start}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.o.ok(tt.now, DefaultStabilityWindow))
		})
	}
}

func TestObservationOf(t *testing.T) {
	tests := []struct {
		name            string
		policy          container.RestartPolicyMode
		health          *container.HealthConfig
		state           container.State
		wantOneShot     bool
		wantHealthcheck bool
		wantStarted     bool
	}{
		{"no healthcheck", container.RestartPolicyUnlessStopped, nil, container.State{Status: container.StateRunning, Running: true}, false, false, true},
		{"healthcheck disabled", container.RestartPolicyUnlessStopped, &container.HealthConfig{Test: []string{"NONE"}}, container.State{Status: container.StateRunning, Running: true}, false, false, true},
		{"healthcheck (the image's or the service's)", container.RestartPolicyAlways, &container.HealthConfig{Test: []string{"CMD", "true"}}, container.State{Status: container.StateRunning, Running: true}, false, true, true},
		{"an empty test runs nothing", container.RestartPolicyAlways, &container.HealthConfig{}, container.State{Status: container.StateRunning, Running: true}, false, false, true},
		{"restart: no is one-shot", container.RestartPolicyDisabled, nil, container.State{Status: container.StateExited}, true, false, false},
		{"no policy is one-shot", "", nil, container.State{Status: container.StateExited}, true, false, false},
		{"restarting keeps Running set, and a stale StartedAt", container.RestartPolicyUnlessStopped, nil, container.State{Status: container.StateRestarting, Running: true, Restarting: true}, false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.state.StartedAt = "2026-01-02T03:04:05.123456789Z"
			o := observationOf(container.InspectResponse{
				ID: "abc", Name: "/s-web-1", RestartCount: 3, State: &tt.state,
				Config:     &container.Config{Healthcheck: tt.health, Labels: map[string]string{api.ServiceLabel: "web"}},
				HostConfig: &container.HostConfig{RestartPolicy: container.RestartPolicy{Name: tt.policy}},
			})
			assert.Equal(t, "s-web-1", o.container)
			assert.Equal(t, "web", o.service)
			assert.Equal(t, 3, o.restarts)
			assert.Equal(t, tt.wantOneShot, o.oneShot)
			assert.Equal(t, tt.wantHealthcheck, o.healthcheck)
			assert.Equal(t, tt.wantStarted, !o.startedAt.IsZero())
		})
	}
}

func TestMergeFailures(t *testing.T) {
	settle := []Failure{{Container: "s-b-1", State: "restarting", Restarts: 3}}
	explain := []Failure{{Container: "s-c-1", State: "running", Health: "unhealthy"}, {Container: "s-b-1", State: "running"}, {Container: "s-a-1", State: "exited"}}
	got := MergeFailures(settle, explain)
	assert.Equal(t, []Failure{{Container: "s-a-1", State: "exited"}, {Container: "s-b-1", State: "restarting", Restarts: 3}, {Container: "s-c-1", State: "running", Health: "unhealthy"}}, got)
	assert.Empty(t, MergeFailures(nil, nil))
}

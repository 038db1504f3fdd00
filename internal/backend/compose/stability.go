package compose

import (
	"context"
	"sort"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/docker/compose/v5/pkg/api"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// DefaultStabilityWindow is how long a container without a healthcheck
// must run, without the engine restarting it, before up calls it up.
// Compose judges such a container by "running" alone, and a crash loop is
// running for a moment after each restart.
const DefaultStabilityWindow = 5 * time.Second

// settlePoll is how often Settle looks again. Docker waits 100 ms before
// the first restart of a crashed container and doubles the wait each time,
// so a loop is seen restarting within its first few rounds.
const settlePoll = 250 * time.Millisecond

// SettleOptions configure Settle.
type SettleOptions struct {
	// Window is how long each watched container must run without a restart.
	// Zero or less watches nothing.
	Window time.Duration
	// Watching, if set, is told which containers Settle waits for, and for
	// at most how long, before it starts waiting. It is not called when
	// there is nothing to wait for.
	Watching func(containers []string, wait time.Duration)
}

// Settle watches the project's long-running containers that compose can
// only judge by "running" (no effective healthcheck), and those the engine
// has restarted, until each has run for the window since its last start,
// and returns a Failure, with its last logs, for each that restarted,
// is restarting, or exited meanwhile. Containers that have already run
// that long cost one inspection and no wait, so an up that started nothing
// does not get slower.
func (t *Target) Settle(ctx context.Context, p *types.Project, opts SettleOptions) ([]Failure, error) {
	if opts.Window <= 0 {
		return nil, nil
	}
	cs, err := t.containers(ctx, p.Name)
	if err != nil {
		return nil, err
	}
	var first []observation
	for _, c := range cs {
		svc, ok := p.Services[c.Labels[api.ServiceLabel]]
		if !ok {
			continue
		}
		o, err := t.observe(ctx, c.ID)
		if err != nil {
			return nil, err
		}
		// As Explain decides: the spec says what is meant to complete.
		o.oneShot = svc.Restart == types.RestartPolicyNo
		first = append(first, o)
	}
	var now func() time.Time
	for _, o := range first {
		if o.needsClock() {
			if now, err = t.engineClock(ctx); err != nil {
				return nil, err
			}
			break
		}
	}
	type watch struct {
		first observation
		until time.Time // local clock
	}
	var failed []observation
	var watching []*watch
	var names []string
	longest := time.Duration(0)
	for _, o := range first {
		v, wait := judge(o, now, opts.Window)
		switch v {
		case crashing:
			failed = append(failed, o)
		case settling:
			watching = append(watching, &watch{first: o, until: time.Now().Add(wait)})
			names = append(names, o.container)
			longest = max(longest, wait)
		}
	}
	if len(watching) > 0 && opts.Watching != nil {
		opts.Watching(names, longest)
	}
	for len(watching) > 0 {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(settlePoll):
		}
		next := watching[:0]
		for _, w := range watching {
			o, err := t.observe(ctx, w.first.id)
			if err != nil {
				return nil, err
			}
			switch {
			case o.status != container.StateRunning:
				// Seen down (with the exit code that sent it down): no
				// need to wait for the rest of the window.
				failed = append(failed, o)
			case !time.Now().Before(w.until):
				if restarted(w.first, o) {
					failed = append(failed, o)
				}
			default:
				next = append(next, w)
			}
		}
		watching = next
	}
	out := make([]Failure, 0, len(failed))
	for _, o := range failed {
		out = append(out, Failure{Service: o.service, Container: o.container, State: string(o.status), Health: o.health,
			ExitCode: o.exitCode, Restarts: o.restarts, LastLogs: t.tail(ctx, o.id, 15)})
	}
	return out, nil
}

// MergeFailures returns the failures of first, then those of second for
// containers first does not name, ordered by container.
func MergeFailures(first, second []Failure) []Failure {
	seen := map[string]bool{}
	var out []Failure
	for _, fs := range [][]Failure{first, second} {
		for _, f := range fs {
			if !seen[f.Container] {
				seen[f.Container] = true
				out = append(out, f)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Container < out[j].Container })
	return out
}

// observation is what stability is judged from: one inspection of one
// container.
type observation struct {
	id, service, container string
	// oneShot is a container the engine never restarts (restart: "no"):
	// it is meant to complete.
	oneShot bool
	status  container.ContainerState
	// exitCode is the last exit's; the engine resets it on each start.
	exitCode int
	// healthcheck says the container has an effective one (its own or its
	// image's, not disabled); health is its status.
	healthcheck bool
	health      string
	restarts    int
	startedAt   time.Time
}

func (t *Target) observe(ctx context.Context, id string) (observation, error) {
	res, err := t.Client().ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return observation{}, err
	}
	return observationOf(res.Container), nil
}

func observationOf(c container.InspectResponse) observation {
	o := observation{id: c.ID, container: trimSlash(c.Name), restarts: c.RestartCount}
	if c.Config != nil {
		o.service = c.Config.Labels[api.ServiceLabel]
		o.healthcheck = effectiveHealthcheck(c.Config.Healthcheck)
	}
	if c.HostConfig != nil {
		policy := c.HostConfig.RestartPolicy.Name
		o.oneShot = policy == "" || policy == container.RestartPolicyDisabled
	}
	if s := c.State; s != nil {
		o.status, o.exitCode = s.Status, s.ExitCode
		if s.Health != nil {
			o.health = string(s.Health.Status)
		}
		// StartedAt is kept while a container is restarting or exited:
		// uptime only means something for a running one.
		if started, err := time.Parse(time.RFC3339Nano, s.StartedAt); err == nil && s.Status == container.StateRunning {
			o.startedAt = started
		}
	}
	return o
}

func trimSlash(name string) string {
	if len(name) > 0 && name[0] == '/' {
		return name[1:]
	}
	return name
}

// effectiveHealthcheck reports whether the engine runs a healthcheck for
// a container with this configuration, as compose decides whether it can
// wait for "healthy" or only for "running".
func effectiveHealthcheck(h *container.HealthConfig) bool {
	return h != nil && len(h.Test) > 0 && h.Test[0] != "NONE"
}

// needsClock says whether judging o needs its uptime.
func (o observation) needsClock() bool {
	return !o.oneShot && o.status == container.StateRunning && (!o.healthcheck || o.restarts > 0)
}

// verdict is what Settle makes of one observation.
type verdict int

const (
	// settled: nothing to wait for (stable, one-shot, or for Explain to
	// judge: created, paused, unhealthy...).
	settled verdict = iota
	// settling: running, but not yet for the whole window.
	settling
	// crashing: a long-running container that is restarting, exited or dead.
	crashing
)

// judge decides about o at the engine's time now() and, for a settling
// container, how much longer it must run. Watched are the containers
// whose readiness compose judges by "running" alone (no effective
// healthcheck) and those the engine has restarted: a restart count above
// zero is how a crash loop looks between two crashes.
func judge(o observation, now func() time.Time, window time.Duration) (verdict, time.Duration) {
	if o.oneShot {
		return settled, 0
	}
	switch o.status {
	case container.StateRestarting, container.StateExited, container.StateDead:
		return crashing, 0
	case container.StateRunning:
	default:
		return settled, 0
	}
	if !o.needsClock() || now == nil {
		return settled, 0
	}
	if up := now().Sub(o.startedAt); up < window {
		return settling, window - up
	}
	return settled, 0
}

// restarted reports whether the container went down between two
// observations: the engine counted a restart or it started again.
func restarted(before, after observation) bool {
	return after.restarts != before.restarts || after.status != container.StateRunning ||
		!after.startedAt.Equal(before.startedAt)
}

// ok says whether the container is where the spec wants it, for status,
// which looks once and cannot watch: a one-shot completed; a long-running
// one running, healthy if it has a healthcheck, and not restarted by the
// engine less than window ago (a crash loop between two crashes) at the
// engine's time now (which may be nil when o has no restarts).
func (o observation) ok(now func() time.Time, window time.Duration) bool {
	if o.oneShot {
		return o.status == container.StateExited && o.exitCode == 0
	}
	if o.status != container.StateRunning || o.healthcheck && o.health != string(container.Healthy) {
		return false
	}
	v, _ := judge(o, now, window)
	return v == settled || o.restarts == 0
}

// engineClock returns the engine's time, read once from the engine and
// carried forward on the local monotonic clock: uptimes are measured on
// the clock that wrote StartedAt, so a remote host whose clock is off
// neither skips nor stretches the window.
func (t *Target) engineClock(ctx context.Context) (func() time.Time, error) {
	before := time.Now()
	res, err := t.Client().Info(ctx, client.InfoOptions{})
	if err != nil {
		return nil, err
	}
	engine, err := time.Parse(time.RFC3339Nano, res.Info.SystemTime)
	if err != nil {
		return time.Now, nil
	}
	// The engine read its clock somewhere in the round trip: take the middle.
	mid := before.Add(time.Since(before) / 2)
	return func() time.Time { return engine.Add(time.Since(mid)) }, nil
}

package compose

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/docker/compose/v5/pkg/api"
	"github.com/docker/compose/v5/pkg/compose"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/aipairpro/orchestrator/internal/plan"
)

// PlanOptions are what a plan knows beyond the project.
type PlanOptions struct {
	// Applied is the record of the last successful up (service -> config
	// hash), from Applied; it tells drift (removed or changed by hand)
	// apart from changes nobody has applied yet. It may be nil.
	Applied map[string]string
	// PostgresMajor is the spec's database.version: the major PostgreSQL
	// is expected to run when its image is not on the engine yet.
	PostgresMajor string
}

// Plan compares the project (desired) with what the engine runs (actual),
// using compose's own configuration hashes, so that it predicts what Up
// will do: create what is missing, recreate what diverged, start what was
// stopped, remove orphans. Each change carries its reason. A change that
// would break data is refused (see plan.Change.Refused): a PostgreSQL
// server of another major than the data in its volume.
func (t *Target) Plan(ctx context.Context, p *types.Project, opts PlanOptions) (*plan.Plan, error) {
	applied := opts.Applied
	labelPassThrough(p)
	pl := plan.New(p.Name, "docker ("+t.host+")")
	// Another compose project of the same name: compose would remove its
	// containers and adopt its volumes. Refused, never applied.
	foreign, err := t.Foreign(ctx, p.Name)
	if err != nil {
		return nil, err
	}
	for _, c := range foreign {
		pl.Add(c)
	}
	cs, err := t.containers(ctx, p.Name)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	byService := map[string][]container.Summary{}
	for _, c := range cs {
		byService[c.Labels[api.ServiceLabel]] = append(byService[c.Labels[api.ServiceLabel]], c)
	}
	imageIDs := map[string]string{}
	networks := networkNames(p)
	for _, name := range slices.Sorted(maps.Keys(p.Services)) {
		svc := p.Services[name]
		last, wasApplied := applied[name]
		ch, err := t.planService(ctx, svc, byService[name], imageIDs, networks, last, wasApplied)
		if err != nil {
			return nil, err
		}
		// Only a container about to be (re)created or started opens the
		// data; one left alone already runs on it.
		if name == PostgresService && ch.Action() != plan.NoOp {
			if ch.Refused, ch.Fix, err = t.checkPostgresData(ctx, p, svc, byService[name], opts.PostgresMajor); err != nil {
				return nil, fmt.Errorf("check the data of service %s: %w", name, err)
			}
		}
		pl.Add(ch)
	}
	for _, name := range slices.Sorted(maps.Keys(byService)) {
		if _, ok := p.Services[name]; !ok {
			pl.Add(plan.Change{Type: "service", Name: name, Actions: []plan.Action{plan.Delete}, Reason: "orphaned: not in the spec any more", Drift: false})
		}
	}
	if err := t.planNetworks(ctx, p, pl); err != nil {
		return nil, err
	}
	if err := t.planVolumes(ctx, p, pl); err != nil {
		return nil, err
	}
	pl.Sort()
	return pl, nil
}

func (t *Target) planService(ctx context.Context, svc types.ServiceConfig, cs []container.Summary, imageIDs map[string]string, networks map[string]string, applied string, wasApplied bool) (plan.Change, error) {
	ch := plan.Change{Type: "service", Name: svc.Name, Actions: []plan.Action{plan.NoOp}}
	hash, err := compose.ServiceHash(svc)
	if err != nil {
		return ch, err
	}
	// No configuration hash here: compose's hash covers resolved
	// environment values, pass-through secrets included.
	ch.After = map[string]string{"image": svc.Image, "replicas": fmt.Sprint(svc.GetScale())}
	if len(cs) == 0 && svc.GetScale() == 0 {
		return ch, nil
	}
	if len(cs) == 0 {
		ch.Actions, ch.Reason = []plan.Action{plan.Create}, "missing: not created yet"
		if wasApplied {
			ch.Reason, ch.Drift = "missing: removed by hand since the last up", true
		}
		return ch, nil
	}
	c := cs[0]
	ch.Before = map[string]string{"image": c.Image, "state": string(c.State), "replicas": fmt.Sprint(len(cs))}
	want := svc.GetScale()
	oneShot := svc.Restart == types.RestartPolicyNo
	var reasons []string
	drift := false
	for _, c := range cs {
		lost := ""
		if c.State == container.StateRunning {
			lost = missingNetwork(svc, c, networks)
		}
		switch {
		case c.Labels[api.ConfigHashLabel] != hash && wasApplied && applied == hash:
			reasons = append(reasons, fmt.Sprintf("container %s was changed outside orchestrator since the last up", containerName(c)))
			drift = true
		case c.Labels[api.ConfigHashLabel] != hash:
			if c.Image != svc.Image {
				reasons = append(reasons, fmt.Sprintf("image changed (%s -> %s)", c.Image, svc.Image))
			} else {
				reasons = append(reasons, "config changed")
			}
		case t.imageChanged(ctx, svc.Image, c, imageIDs):
			reasons = append(reasons, "image changed (new image under the same tag)")
		case lost != "":
			// compose recreates a running container that lost a network.
			reasons = append(reasons, fmt.Sprintf("container %s is not attached to network %s (disconnected by hand)", containerName(c), lost))
			drift = true
		case c.State == container.StateRunning:
		case oneShot && c.State == container.StateExited && exitCode(ctx, t, c) == 0:
		default:
			reasons = append(reasons, fmt.Sprintf("container %s is %s: stopped by hand or crashed", containerName(c), c.State))
			drift = true
		}
	}
	if len(cs) != want {
		reasons = append(reasons, fmt.Sprintf("scale %d -> %d", len(cs), want))
	}
	if len(reasons) > 0 {
		ch.Actions, ch.Reason, ch.Drift = []plan.Action{plan.Update}, joinReasons(reasons), drift
	}
	return ch, nil
}

// Applied returns the record to keep after a successful up: each
// service's configuration hash.
func Applied(p *types.Project) (map[string]string, error) {
	labelPassThrough(p)
	out := make(map[string]string, len(p.Services))
	for name, svc := range p.Services {
		h, err := compose.ServiceHash(svc)
		if err != nil {
			return nil, err
		}
		out[name] = h
	}
	return out, nil
}

// networkNames maps the project's network keys to their engine names.
func networkNames(p *types.Project) map[string]string {
	out := make(map[string]string, len(p.Networks))
	for key, n := range p.Networks {
		out[key] = n.Name
	}
	return out
}

// missingNetwork returns a network the service should be on but the
// container is not attached to, or "".
func missingNetwork(svc types.ServiceConfig, c container.Summary, names map[string]string) string {
	if svc.NetworkMode != "" || c.NetworkSettings == nil {
		return ""
	}
	for _, key := range slices.Sorted(maps.Keys(svc.Networks)) {
		name := names[key]
		if name == "" {
			continue
		}
		if _, ok := c.NetworkSettings.Networks[name]; !ok {
			return name
		}
	}
	return ""
}

func exitCode(ctx context.Context, t *Target, c container.Summary) int {
	insp, err := t.Client().ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
	if err != nil || insp.Container.State == nil {
		return -1
	}
	return insp.Container.State.ExitCode
}

// imageChanged reports whether the tag now points at another image than
// the one the container was created from (compose records that image's ID).
func (t *Target) imageChanged(ctx context.Context, ref string, c container.Summary, cache map[string]string) bool {
	recorded := c.Labels[api.ImageDigestLabel]
	if recorded == "" {
		return false
	}
	id, ok := cache[ref]
	if !ok {
		res, err := t.Client().ImageInspect(ctx, ref)
		if err == nil {
			id = res.ID
		}
		cache[ref] = id
	}
	return id != "" && id != recorded
}

func (t *Target) planNetworks(ctx context.Context, p *types.Project, pl *plan.Plan) error {
	res, err := t.Client().NetworkList(ctx, client.NetworkListOptions{Filters: make(client.Filters).Add("label", api.ProjectLabel+"="+p.Name)})
	if err != nil {
		return fmt.Errorf("list networks: %w", err)
	}
	actual := map[string]map[string]string{}
	for _, n := range res.Items {
		actual[n.Name] = n.Labels
	}
	for _, key := range slices.Sorted(maps.Keys(p.Networks)) {
		n := p.Networks[key]
		if bool(n.External) {
			continue
		}
		ch := plan.Change{Type: "network", Name: key, Actions: []plan.Action{plan.NoOp}}
		labels, ok := actual[n.Name]
		hash, err := compose.NetworkHash(&n)
		if err != nil {
			return err
		}
		if !ok {
			// compose adopts a network of the right name made by hand.
			if _, err := t.Client().NetworkInspect(ctx, n.Name, client.NetworkInspectOptions{}); err == nil {
				ok = true
			}
		}
		switch {
		case !ok:
			ch.Actions, ch.Reason = []plan.Action{plan.Create}, "missing"
		case labels[api.ConfigHashLabel] != "" && labels[api.ConfigHashLabel] != hash:
			ch.Actions, ch.Reason = []plan.Action{plan.Update}, "config changed"
		}
		pl.Add(ch)
	}
	return nil
}

func (t *Target) planVolumes(ctx context.Context, p *types.Project, pl *plan.Plan) error {
	res, err := t.Client().VolumeList(ctx, client.VolumeListOptions{Filters: make(client.Filters).Add("label", api.ProjectLabel+"="+p.Name)})
	if err != nil {
		return fmt.Errorf("list volumes: %w", err)
	}
	actual := map[string]bool{}
	for _, v := range res.Items {
		actual[v.Name] = true
	}
	for _, key := range slices.Sorted(maps.Keys(p.Volumes)) {
		v := p.Volumes[key]
		if bool(v.External) {
			continue
		}
		ch := plan.Change{Type: "volume", Name: key, Actions: []plan.Action{plan.NoOp}}
		if !actual[v.Name] {
			// compose adopts a volume of the right name made by hand (a
			// restored backup, say).
			if _, err := t.Client().VolumeInspect(ctx, v.Name, client.VolumeInspectOptions{}); err != nil {
				ch.Actions, ch.Reason = []plan.Action{plan.Create}, "missing"
			}
		}
		pl.Add(ch)
	}
	return nil
}

// joinReasons lists each distinct reason once, in a stable order.
func joinReasons(rs []string) string {
	slices.Sort(rs)
	return strings.Join(slices.Compact(rs), "; ")
}

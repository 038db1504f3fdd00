package compose

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/docker/compose/v5/pkg/api"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/volume"
	"github.com/moby/moby/client"

	"github.com/aipairpro/orchestrator/internal/plan"
)

// LabelStack carries the stack's name on every network and volume
// orchestrator creates (containers carry LabelComponent). Compose finds a
// project's resources by its own label (com.docker.compose.project) alone,
// so without ours an unrelated compose project that happens to share the
// stack's name would be taken for the stack: up would remove its
// containers as orphans and adopt its volumes, down --volumes would delete
// them.
const LabelStack = "dev.orchestrator.stack"

// Foreign returns, as refused changes, every container, network and volume
// that carries the project's compose label but not orchestrator's: they
// belong to another compose project of the same name. Plan, up and down
// refuse to run while any exists, since compose would remove or adopt them.
func (t *Target) Foreign(ctx context.Context, project string) ([]plan.Change, error) {
	byProject := make(client.Filters).Add("label", api.ProjectLabel+"="+project)
	cs, err := t.Client().ContainerList(ctx, client.ContainerListOptions{All: true, Filters: byProject})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	ns, err := t.Client().NetworkList(ctx, client.NetworkListOptions{Filters: byProject})
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	vs, err := t.Client().VolumeList(ctx, client.VolumeListOptions{Filters: byProject})
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	return foreignChanges(project, cs.Items, ns.Items, vs.Items), nil
}

// foreignChanges sorts the project's resources into ours and someone
// else's. Containers are ours when they carry LabelComponent; networks and
// volumes when they carry LabelStack with the stack's name, or, made by an
// orchestrator from before that label, when a container of ours uses them.
func foreignChanges(project string, cs []container.Summary, ns []network.Summary, vs []volume.Volume) []plan.Change {
	usedVolumes, usedNetworks := map[string]bool{}, map[string]bool{}
	var out []plan.Change
	for _, c := range cs {
		if _, ours := c.Labels[LabelComponent]; ours {
			for _, m := range c.Mounts {
				if m.Name != "" {
					usedVolumes[m.Name] = true
				}
			}
			if c.NetworkSettings != nil {
				for name := range c.NetworkSettings.Networks {
					usedNetworks[name] = true
				}
			}
			continue
		}
		what := "image " + c.Image
		if svc := c.Labels[api.ServiceLabel]; svc != "" {
			what = fmt.Sprintf("service %q, %s", svc, what)
		}
		out = append(out, foreign("container", containerName(c), project, what,
			"up would remove it as an orphan or recreate it, down would remove it"))
	}
	for _, n := range ns {
		if n.Labels[LabelStack] == project || usedNetworks[n.Name] {
			continue
		}
		out = append(out, foreign("network", n.Name, project, "driver "+n.Driver,
			"down would remove it, and up would recreate it if the stack has a network of that name"))
	}
	for _, v := range vs {
		if v.Labels[LabelStack] == project || usedVolumes[v.Name] {
			continue
		}
		out = append(out, foreign("volume", v.Name, project, "driver "+v.Driver,
			"down --volumes would delete it, and up would mount its data into the stack's services if the stack has a volume of that name"))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out
}

func foreign(kind, name, project, what, harm string) plan.Change {
	return plan.Change{
		Type: kind, Name: name, Address: kind + "." + name,
		Actions: []plan.Action{plan.Delete},
		Reason:  fmt.Sprintf("labelled as compose project %q but not made by orchestrator (%s)", project, what),
		Refused: fmt.Sprintf("%s %s belongs to another compose project named %q: %s", kind, name, project, harm),
		Fix: fmt.Sprintf("this stack and another compose project are both named %q: take the other one down where it was started\n"+
			"(`docker compose -p %s down`), or rename this stack (`name:` in the spec; a new name starts with new volumes).\n"+
			"A volume of this stack made by an orchestrator from before the %s label counts as another project's\n"+
			"once no container of the stack uses it: see the README, \"Only what orchestrator created\"",
			project, project, LabelStack),
	}
}

// ForeignError is the error of a run refused because of foreign resources;
// each change says what it is and what to do.
func ForeignError(op string, changes []plan.Change) error {
	if len(changes) == 0 {
		return nil
	}
	var names []string
	for _, c := range changes {
		names = append(names, c.Address)
	}
	return fmt.Errorf("%s refused, nothing changed: %s carry this stack's compose project label but were not created by orchestrator (another compose project of the same name)\n  fix: %s",
		op, strings.Join(names, ", "), strings.ReplaceAll(changes[0].Fix, "\n", "\n       "))
}

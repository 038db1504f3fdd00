package compose

import (
	"strings"
	"testing"

	"github.com/docker/compose/v5/pkg/api"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/volume"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aipairpro/orchestrator/internal/plan"
)

func TestForeignChanges(t *testing.T) {
	ours := func(name string, vols, nets []string) container.Summary {
		c := container.Summary{ID: name + "0000000000", Names: []string{"/" + name}, Image: "web:1",
			Labels:          map[string]string{api.ProjectLabel: "acme", api.ServiceLabel: "app", LabelComponent: "app"},
			NetworkSettings: &container.NetworkSettingsSummary{Networks: map[string]*network.EndpointSettings{}}}
		for _, v := range vols {
			c.Mounts = append(c.Mounts, container.MountPoint{Type: "volume", Name: v})
		}
		for _, n := range nets {
			c.NetworkSettings.Networks[n] = &network.EndpointSettings{}
		}
		return c
	}
	stranger := container.Summary{ID: "f00000000000000", Names: []string{"/acme-db-1"}, Image: "mysql:8",
		Labels: map[string]string{api.ProjectLabel: "acme", api.ServiceLabel: "db"}}
	bare := container.Summary{ID: "b00000000000000", Names: []string{"/lonely"}, Image: "busybox",
		Labels: map[string]string{api.ProjectLabel: "acme"}}
	net := func(name string, labels map[string]string) network.Summary {
		return network.Summary{Network: network.Network{Name: name, Driver: "bridge", Labels: labels}}
	}
	vol := func(name string, labels map[string]string) volume.Volume {
		return volume.Volume{Name: name, Driver: "local", Labels: labels}
	}
	labelled := map[string]string{api.ProjectLabel: "acme", LabelStack: "acme"}
	composeOnly := map[string]string{api.ProjectLabel: "acme"}
	otherStack := map[string]string{api.ProjectLabel: "acme", LabelStack: "other"}

	tests := []struct {
		name string
		cs   []container.Summary
		ns   []network.Summary
		vs   []volume.Volume
		want []string
	}{
		{name: "empty engine"},
		{
			name: "everything ours",
			cs:   []container.Summary{ours("acme-app-1", []string{"acme_data"}, []string{"acme_edge"})},
			ns:   []network.Summary{net("acme_edge", labelled)},
			vs:   []volume.Volume{vol("acme_data", labelled), vol("acme_spare", labelled)},
		},
		{
			name: "another project's container, network and volume",
			cs:   []container.Summary{ours("acme-app-1", nil, nil), stranger, bare},
			ns:   []network.Summary{net("acme_default", composeOnly)},
			vs:   []volume.Volume{vol("acme_db", composeOnly), vol("acme_x", otherStack)},
			want: []string{"container.acme-db-1", "container.lonely", "network.acme_default", "volume.acme_db", "volume.acme_x"},
		},
		{
			// Made before orchestrator labelled networks and volumes: ours
			// while a container of ours uses them.
			name: "unlabelled but used by our containers",
			cs:   []container.Summary{ours("acme-postgres-1", []string{"acme_postgres-data"}, []string{"acme_internal"})},
			ns:   []network.Summary{net("acme_internal", composeOnly)},
			vs:   []volume.Volume{vol("acme_postgres-data", composeOnly)},
		},
		{
			// A container of another project using a volume does not make
			// the volume ours.
			name: "used only by a foreign container",
			cs: []container.Summary{func() container.Summary {
				c := stranger
				c.Mounts = []container.MountPoint{{Type: "volume", Name: "acme_db"}}
				return c
			}()},
			vs:   []volume.Volume{vol("acme_db", composeOnly)},
			want: []string{"container.acme-db-1", "volume.acme_db"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := foreignChanges("acme", tt.cs, tt.ns, tt.vs)
			var addrs []string
			for _, c := range got {
				addrs = append(addrs, c.Address)
				assert.NotEmpty(t, c.Refused, c.Address)
				assert.Contains(t, c.Fix, "docker compose -p acme down")
				assert.Equal(t, plan.Delete, c.Action())
			}
			assert.Equal(t, tt.want, addrs)
		})
	}

	t.Run("the refusal names the resource and what would happen to it", func(t *testing.T) {
		got := foreignChanges("acme", []container.Summary{stranger}, nil, []volume.Volume{vol("acme_db", composeOnly)})
		require.Len(t, got, 2)
		assert.Equal(t, `labelled as compose project "acme" but not made by orchestrator (service "db", image mysql:8)`, got[0].Reason)
		assert.Equal(t, `container acme-db-1 belongs to another compose project named "acme": up would remove it as an orphan or recreate it, down would remove it`, got[0].Refused)
		assert.Equal(t, `volume acme_db belongs to another compose project named "acme": down --volumes would delete it, and up would mount its data into the stack's services if the stack has a volume of that name`, got[1].Refused)
		err := ForeignError("down", got)
		require.Error(t, err)
		assert.True(t, strings.HasPrefix(err.Error(), "down refused, nothing changed: container.acme-db-1, volume.acme_db carry this stack's compose project label"), err.Error())
		assert.NoError(t, ForeignError("down", nil))
	})
}

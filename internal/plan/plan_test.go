package plan

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPlanText(t *testing.T) {
	p := New("acme", "docker (unix:///var/run/docker.sock)")
	p.Add(Change{Type: "volume", Name: "postgres-data", Actions: []Action{NoOp}})
	p.Add(Change{Type: "service", Name: "worker", Actions: []Action{Update}, Reason: "config changed"})
	p.Add(Change{Type: "service", Name: "kestra", Actions: []Action{Create}, Reason: "missing: removed by hand since the last up", Drift: true})
	p.Add(Change{Type: "service", Name: "old", Actions: []Action{Delete}, Reason: "orphaned: not in the spec any more"})
	p.Add(Change{Type: "network", Name: "edge", Actions: []Action{NoOp}})
	p.Sort()
	assert.True(t, p.HasChanges())
	assert.Equal(t, `Stack "acme" on docker (unix:///var/run/docker.sock) will be changed:

  + service.kestra will be created: missing: removed by hand since the last up [drift]
  - service.old will be deleted: orphaned: not in the spec any more
  ~ service.worker will be updated: config changed

Plan: 1 to create, 1 to update, 1 to delete, 2 unchanged.
`, p.String())

	var buf bytes.Buffer
	require.NoError(t, p.WriteJSON(&buf))
	var back Plan
	require.NoError(t, json.Unmarshal(buf.Bytes(), &back))
	assert.Equal(t, "1.0", back.FormatVersion)
	assert.Equal(t, p.ResourceChanges, back.ResourceChanges)
}

func TestEmptyPlan(t *testing.T) {
	p := New("acme", "docker")
	p.Add(Change{Type: "service", Name: "app", Actions: []Action{NoOp}})
	assert.False(t, p.HasChanges())
	assert.Equal(t, "No changes. Stack \"acme\" on docker matches the spec.\n", p.String())
}

func TestPlanRefused(t *testing.T) {
	p := New("acme", "docker")
	p.Add(Change{Type: "service", Name: "app", Actions: []Action{Update}, Reason: "config changed"})
	p.Add(Change{Type: "service", Name: "postgres", Actions: []Action{Update}, Reason: "image changed (postgres:17.6 -> postgres:18.0)",
		Refused: "volume acme_postgres-data holds PostgreSQL 17 data", Fix: "set database.version back to \"17\"; or:\n  orchestrator down\n  orchestrator up"})
	p.Sort()
	assert.True(t, p.HasChanges())
	require.Len(t, p.Refused(), 1)
	assert.Equal(t, "service.postgres", p.Refused()[0].Address)
	assert.Equal(t, `Stack "acme" on docker will be changed:

  ~ service.app will be updated: config changed
  ~ service.postgres will be updated: image changed (postgres:17.6 -> postgres:18.0)
    refused: volume acme_postgres-data holds PostgreSQL 17 data
    fix: set database.version back to "17"; or:
        orchestrator down
        orchestrator up

Plan: 0 to create, 2 to update, 0 to delete, 0 unchanged. Refused: 1; nothing will be applied.
`, p.String())

	var buf bytes.Buffer
	require.NoError(t, p.WriteJSON(&buf))
	assert.Contains(t, buf.String(), `"refused": "volume acme_postgres-data holds PostgreSQL 17 data"`)
	var back Plan
	require.NoError(t, json.Unmarshal(buf.Bytes(), &back))
	assert.Equal(t, p.ResourceChanges, back.ResourceChanges)

	assert.Empty(t, New("acme", "docker").Refused())
}

package catalog

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestSecretsNameTheDataMadeWithThem: every secret a data store was first
// started with, or that encrypts what it keeps, names its volume, so a lost
// one is never replaced while that data exists; the others name none.
func TestSecretsNameTheDataMadeWithThem(t *testing.T) {
	dep := platform(t, "")
	vols := map[string]bool{}
	for _, v := range dep.Volumes {
		vols[v.Name] = true
	}
	got := map[string][]string{}
	for _, s := range dep.Secrets {
		got[s.Name] = s.DataVolumes
		for _, v := range s.DataVolumes {
			assert.True(t, vols[v], "%s names volume %s, which the deployment does not have", s.Name, v)
		}
	}
	want := map[string][]string{
		"postgres-password":             {"postgres-data"},
		"db-app-password":               {"postgres-data"},
		"db-kestra-password":            {"postgres-data"},
		"db-postiz-password":            {"postgres-data"},
		"db-temporal-password":          {"postgres-data"},
		"kestra-encryption-key":         {"postgres-data"},
		"tracardi-mysql-root-password":  {"tracardi-mysql-data"},
		"tracardi-mysql-password":       {"tracardi-mysql-data"},
		"portainer-admin-password":      {"portainer-data"},
		"kestra-admin-password":         nil,
		"postiz-jwt-secret":             nil,
		"tracardi-installation-token":   nil,
		"tracardi-auto-profile-merging": nil,
		"kestra-application.yml":        nil,
	}
	for name, w := range want {
		assert.Equal(t, w, got[name], name)
	}
	for name, v := range got {
		if _, ok := want[name]; !ok && len(v) == 0 {
			// db-<service>-password of the example's own services.
			assert.NotRegexp(t, `^db-.*-password$`, name, "%s has no data volume", name)
		}
	}
}

package compose_test

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/aipairpro/orchestrator/internal/backend/compose"
	"github.com/aipairpro/orchestrator/internal/engine"
	"github.com/aipairpro/orchestrator/internal/spec"
	"github.com/aipairpro/orchestrator/internal/state"
)

// hostileValues are secret values a person may restore or type: each
// carries characters that mean something in one of the sinks (URL
// userinfo, YAML, compose's env file and its interpolation, Go templates).
// Every value is checked with and without the trailing newline an editor
// adds.
var hostileValues = []string{
	"p@ss:w/rd#1?x=y&z",
	"it's",
	`back\slash\`,
	`quo"te`,
	"dollar$HOME${X}$$",
	"sp ace and %41 percent",
	"yes",
	"null",
	"0x10",
	"-_1",
	"# not a comment",
	"key: value",
	"[flow, list]",
	`{{ secret "postgres-password" }}`,
	"ünïcödé ✓",
}

// TestHostileSecretsSurviveEverySink renders the platform with each
// hostile value as the app's, Kestra's and Postiz's secrets, then reads
// each sink back with its real consumer: compose-go's loader for the env
// file (the app's DATABASE_URL, with secrets_in_env), net/url for the URLs
// in files (Postiz's and the app's DATABASE_URL), a YAML parser for
// Kestra's configuration. Each must give back exactly the value.
func TestHostileSecretsSurviveEverySink(t *testing.T) {
	src, err := os.ReadFile("../../../examples/platform/stack.yaml")
	require.NoError(t, err)
	st, ds := spec.Load("stack.yaml", bytes.Replace(src, []byte("secrets_in_env: false   #"), []byte("secrets_in_env: true    #"), 1))
	require.False(t, ds.HasErrors(), "%v", ds)
	require.True(t, *st.App.SecretsInEnv)
	for _, value := range hostileValues {
		for _, suffix := range []string{"", "\n", "\r\n"} {
			t.Run(value+suffix, func(t *testing.T) {
				root := t.TempDir()
				store, err := state.Open(filepath.Join(root, "state"))
				require.NoError(t, err)
				for _, name := range []string{"db-app-password", "db-postiz-password", "db-kestra-password", "kestra-admin-password", "postiz-jwt-secret"} {
					require.NoError(t, store.WriteFile("secrets/"+name, []byte(value+suffix)))
				}
				out := filepath.Join(root, "out")
				res, rds := engine.Render(context.Background(), st, engine.RenderOptionsIn{Backend: compose.New(), Store: store, OutDir: out})
				require.False(t, rds.HasErrors(), "%v", rds)
				r := rendered{name: "platform", outDir: out, stateDir: store.Dir(), res: res}
				p := loadBack(t, r)

				fromEnvFile := p.Services["app"].Environment["DATABASE_URL"]
				require.NotNil(t, fromEnvFile, "the app's DATABASE_URL through its env file")
				for sink, raw := range map[string]string{
					"app's env file":       *fromEnvFile,
					"app's secret file":    res.Artifacts.Environment[compose.SecretVariable("app-database-url")],
					"Postiz's secret file": res.Artifacts.Environment[compose.SecretVariable("postiz-database-url")],
				} {
					u, err := url.Parse(raw)
					require.NoError(t, err, "%s: DATABASE_URL does not parse", sink)
					pw, _ := u.User.Password()
					assert.Equal(t, value, pw, "%s: DATABASE_URL password", sink)
					assert.Equal(t, "postgres:5432", u.Host, sink)
				}
				assert.Nil(t, p.Services["postiz"].Environment["JWT_SECRET"], "Postiz's secrets are files its wrapper exports")
				assert.Equal(t, value, res.Artifacts.Environment[compose.SecretVariable("postiz-jwt-secret")], "JWT_SECRET")

				cfg := res.Artifacts.Environment[compose.SecretVariable("kestra-application.yml")]
				var doc struct {
					Datasources struct {
						Postgres struct{ Password string } `yaml:"postgres"`
					} `yaml:"datasources"`
					Kestra struct {
						Server struct {
							BasicAuth struct{ Password string } `yaml:"basic-auth"`
						} `yaml:"server"`
						URL string `yaml:"url"`
					} `yaml:"kestra"`
				}
				require.NoError(t, yaml.Unmarshal([]byte(cfg), &doc), cfg)
				assert.Equal(t, value, doc.Datasources.Postgres.Password, "Kestra's datasource password")
				assert.Equal(t, value, doc.Kestra.Server.BasicAuth.Password, "Kestra's admin password")
				assert.Equal(t, "https://kestra.acme.example.com/", doc.Kestra.URL)
			})
		}
	}
}

// A value no sink can carry is refused when read, naming the file.
func TestSecretWithControlCharactersIsRefused(t *testing.T) {
	st, _, ds := spec.LoadFile("../../../examples/platform/stack.yaml")
	require.False(t, ds.HasErrors(), "%v", ds)
	for _, bad := range []string{"two\nlines", "tab\there", "nul\x00", "esc\x1b[31m", "\n", "", "\xff\xfe"} {
		root := t.TempDir()
		store, err := state.Open(filepath.Join(root, "state"))
		require.NoError(t, err)
		require.NoError(t, store.WriteFile("secrets/db-app-password", []byte(bad)))
		_, rds := engine.Render(context.Background(), st, engine.RenderOptionsIn{Backend: compose.New(), Store: store, OutDir: filepath.Join(root, "out")})
		require.True(t, rds.HasErrors(), "%q was accepted", bad)
		assert.Contains(t, rds[len(rds)-1].Summary, filepath.Join(store.Dir(), "secrets", "db-app-password"), "%q", bad)
	}
}

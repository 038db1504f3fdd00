package compose

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestPGMajor(t *testing.T) {
	for in, want := range map[string]string{
		"15\n": "15", "18": "18", " 17 ": "17", "9.6\n": "9.6", "9.6.24": "9.6", "10.1": "10",
		"17.6": "17", "18beta1": "18", "": "", "garbage": "",
	} {
		assert.Equal(t, want, pgMajor(in), "pgMajor(%q)", in)
	}
	for in, want := range map[string]string{
		"postgres (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)": "15",
		"postgres (PostgreSQL) 18.0":                           "18",
		"postgres (PostgreSQL) 9.6.24":                         "9.6",
		"":                                                     "",
		"sh: postgres: not found":                              "",
	} {
		assert.Equal(t, want, serverMajor(in), "serverMajor(%q)", in)
	}
}

func TestParsePGScan(t *testing.T) {
	out := strings.Join([]string{
		"pgversion\t./base/1/PG_VERSION\t17",
		"pgversion\t./PG_VERSION\t17",
		"pgversion\t./18/docker/PG_VERSION\t18",
		"pgversion\t./data/PG_VERSION\t15",
		"pgversion\t./junk/PG_VERSION\tnot a version",
		"server\tpostgres (PostgreSQL) 18.0",
		"end", "",
	}, "\n")
	s, ok := parsePGScan(out)
	assert.True(t, ok)
	assert.Equal(t, []pgCluster{{".", "17"}, {"data", "15"}, {"18/docker", "18"}}, s.Clusters)
	assert.Equal(t, "postgres (PostgreSQL) 18.0", s.Server)

	_, ok = parsePGScan("pgversion\t./PG_VERSION\t17\n")
	assert.False(t, ok, "a scan without its end marker did not finish")
}

func TestPGVerdict(t *testing.T) {
	v17root := pgCluster{".", "17"}
	v15data := pgCluster{"data", "15"}
	v17docker := pgCluster{"17/docker", "17"}
	v18docker := pgCluster{"18/docker", "18"}
	tests := map[string]struct {
		clusters []pgCluster
		dataDir  string
		want     string
		problem  pgProblem
		have     pgCluster
	}{
		"no volume data":                     {nil, ".", "17", pgFine, pgCluster{}},
		"same major":                         {[]pgCluster{v17root}, ".", "17", pgFine, v17root},
		"upgrade 17 to 18, old layout":       {[]pgCluster{v17root}, "18/docker", "18", pgOtherMajor, v17root},
		"upgrade 16 to 17, same layout":      {[]pgCluster{{".", "16"}}, ".", "17", pgOtherMajor, pgCluster{".", "16"}},
		"downgrade 17 to 16":                 {[]pgCluster{v17root}, ".", "16", pgOtherMajor, v17root},
		"downgrade 18 to 17":                 {[]pgCluster{v18docker}, ".", "17", pgOtherMajor, v18docker},
		"stand-in data dir under the volume": {[]pgCluster{v15data}, "data", "15", pgFine, v15data},
		"stand-in asked for another major":   {[]pgCluster{v15data}, "data", "16", pgOtherMajor, v15data},
		// After an in-place pg_upgrade the old cluster stays beside the new
		// one; the server opens its own.
		"18 beside a left 17": {[]pgCluster{v17docker, v18docker}, "18/docker", "18", pgFine, v18docker},
		// Same major, but the server looks elsewhere: it would start an
		// empty cluster.
		"same major, moved data dir":     {[]pgCluster{v15data}, ".", "15", pgElsewhere, v15data},
		"data dir outside the volume":    {[]pgCluster{v17root}, "", "17", pgElsewhere, v17root},
		"data dir outside, other major":  {[]pgCluster{v17root}, "", "18", pgOtherMajor, v17root},
		"two-part major of old releases": {[]pgCluster{{".", "9.6"}}, ".", "9.6", pgFine, pgCluster{".", "9.6"}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			have, problem := pgVerdict(tt.clusters, tt.dataDir, tt.want)
			assert.Equal(t, tt.problem, problem)
			assert.Equal(t, tt.have, have)
		})
	}
}

func TestPGPaths(t *testing.T) {
	assert.Equal(t, "/var/lib/postgresql/data", pgDataDir("17"))
	assert.Equal(t, "/var/lib/postgresql/18/docker", pgDataDir("18"))
	assert.Equal(t, "/var/lib/postgresql/data", pgMountTarget("16"))
	assert.Equal(t, "/var/lib/postgresql", pgMountTarget("18"))
	assert.Equal(t, ".", relDir("/var/lib/postgresql/data", "/var/lib/postgresql/data/"))
	assert.Equal(t, "18/docker", relDir("/var/lib/postgresql", "/var/lib/postgresql/18/docker"))
	assert.Equal(t, "data", relDir("/var/lib/postgresql", "/var/lib/postgresql/data"))
	assert.Equal(t, "", relDir("/var/lib/postgresql/data", "/srv/pg"))
	assert.Equal(t, "", relDir("/var/lib/postgresql/data", "/var/lib/postgresql/database"))
}

func TestUpgradeSteps(t *testing.T) {
	got := upgradeSteps(upgrade{Host: "ssh://deploy@vps", Project: "acme", Volume: "acme_postgres-data", Key: "postgres-data", From: "17",
		OldImage: "postgres:17.6", OldTarget: "/var/lib/postgresql/data", NewImage: "postgres:18.0", NewTarget: "/var/lib/postgresql"})
	assert.Equal(t, `  export DOCKER_HOST=ssh://deploy@vps
  orchestrator down
  docker run -d --name acme-pg-old -v acme_postgres-data:/var/lib/postgresql/data postgres:17.6
  (umask 077 && docker exec acme-pg-old sh -c 'until pg_isready -q -h 127.0.0.1; do sleep 1; done; pg_dumpall -U postgres' > acme-pg17.sql)
  docker rm -f acme-pg-old
  docker volume create acme_postgres-data-pg17
  docker run --rm -v acme_postgres-data:/from:ro -v acme_postgres-data-pg17:/to --entrypoint cp postgres:17.6 -a /from/. /to/
  docker volume rm acme_postgres-data
  docker volume create --label com.docker.compose.project=acme --label com.docker.compose.volume=postgres-data --label dev.orchestrator.stack=acme acme_postgres-data
  docker run -d --name acme-pg-new -e POSTGRES_PASSWORD=restore-only -v acme_postgres-data:/var/lib/postgresql postgres:18.0
  docker exec -i acme-pg-new sh -c 'until pg_isready -q -h 127.0.0.1; do sleep 1; done; psql -q -o /dev/null -U postgres -d postgres' < acme-pg17.sql
  docker rm -f acme-pg-new
  orchestrator up`, got)
	local := upgradeSteps(upgrade{Host: "unix:///var/run/docker.sock", Project: "acme", Volume: "acme_postgres-data", From: "17"})
	assert.True(t, strings.HasPrefix(local, "  orchestrator down\n"), local)
}

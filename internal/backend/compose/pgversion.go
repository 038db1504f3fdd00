package compose

import (
	"context"
	"errors"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"
)

// PostgresService is the catalog's PostgreSQL service, whose data volume
// the plan checks before a server of another major would open it.
const PostgresService = "postgres"

// pgVolumeMount is where a pg-version helper sees the data volume.
const pgVolumeMount = "/orchestrator/volume"

// pgScanScript lists the PG_VERSION files within three levels of the
// volume (a data directory at its root, under data/ or under 18/docker/)
// and the image's server version, then a marker that the scan finished.
const pgScanScript = `cd ` + pgVolumeMount + ` || exit 3
find . -maxdepth 3 -name PG_VERSION -type f 2>/dev/null | while IFS= read -r f; do
  printf 'pgversion\t%s\t%s\n' "$f" "$(head -c 64 "$f" | tr -d '\t\r\n')"
done
printf 'server\t%s\n' "$(postgres --version 2>/dev/null)"
echo end
`

// pgCluster is a PostgreSQL data directory found in a volume.
type pgCluster struct {
	// Dir is the data directory relative to the volume's root ("." for the
	// root itself).
	Dir   string
	Major string
}

// pgScan is what a pg-version helper reported.
type pgScan struct {
	Clusters []pgCluster
	// Server is the image's `postgres --version`, or "".
	Server string
}

// parsePGScan reads a pg-version helper's output. Database subdirectories
// (base/<oid>/PG_VERSION) are not data directories and are left out. ok is
// false when the scan did not finish.
func parsePGScan(out string) (pgScan, bool) {
	var s pgScan
	ok := false
	for _, line := range strings.Split(out, "\n") {
		fields := strings.SplitN(line, "\t", 3)
		switch {
		case fields[0] == "end":
			ok = true
		case fields[0] == "server" && len(fields) == 2:
			s.Server = strings.TrimSpace(fields[1])
		case fields[0] == "pgversion" && len(fields) == 3:
			dir := path.Dir(path.Clean(fields[1]))
			if path.Base(path.Dir(dir)) == "base" {
				continue
			}
			if m := pgMajor(fields[2]); m != "" {
				s.Clusters = append(s.Clusters, pgCluster{Dir: dir, Major: m})
			}
		}
	}
	sort.Slice(s.Clusters, func(i, j int) bool {
		a, b := s.Clusters[i].Dir, s.Clusters[j].Dir
		if da, db := strings.Count(a, "/"), strings.Count(b, "/"); da != db {
			return da < db
		}
		return a < b
	})
	return s, ok
}

var majorRE = regexp.MustCompile(`^(\d+)(?:\.(\d+))?`)

// pgMajor turns a PG_VERSION, PG_MAJOR or database.version value into a
// major: "15", "18"; before 10 a major had two parts ("9.6"). "" when it is
// not a version.
func pgMajor(s string) string {
	m := majorRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return ""
	}
	if n, _ := strconv.Atoi(m[1]); n < 10 && m[2] != "" {
		return m[1] + "." + m[2]
	}
	return m[1]
}

var serverRE = regexp.MustCompile(`\(PostgreSQL\)\s+(\S+)`)

// serverMajor reads the major from `postgres --version`, e.g.
// "postgres (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)" is "15".
func serverMajor(version string) string {
	m := serverRE.FindStringSubmatch(version)
	if m == nil {
		return ""
	}
	return pgMajor(m[1])
}

// pgProblem is what pgVerdict found wrong.
type pgProblem int

const (
	pgFine pgProblem = iota
	// pgOtherMajor: the data is of another major than the server.
	pgOtherMajor
	// pgElsewhere: the data is of the server's major but not where it
	// looks (PGDATA moved: 18's layout, an override); it would start an
	// empty cluster and the data would seem lost.
	pgElsewhere
)

// pgVerdict judges the clusters of a volume for a server of major want
// that opens dataDir (relative to the volume's root; "" when it is not in
// the volume). A cluster at dataDir decides; else any other is a problem:
// the server would start an empty cluster beside it. have is the cluster
// the verdict is about.
func pgVerdict(clusters []pgCluster, dataDir, want string) (pgCluster, pgProblem) {
	for _, c := range clusters {
		if dataDir != "" && c.Dir == dataDir {
			if c.Major != want {
				return c, pgOtherMajor
			}
			return c, pgFine
		}
	}
	for _, c := range clusters {
		if c.Major != want {
			return c, pgOtherMajor
		}
	}
	if len(clusters) > 0 {
		return clusters[0], pgElsewhere
	}
	return pgCluster{}, pgFine
}

// pgDataDir is where the server of major keeps its data when the image
// does not say (PGDATA): 18 moved it under a versioned subdirectory.
func pgDataDir(major string) string {
	if n, err := strconv.Atoi(major); err == nil && n >= 18 {
		return "/var/lib/postgresql/" + major + "/docker"
	}
	return "/var/lib/postgresql/data"
}

// pgMountTarget is where the server of major expects its volume.
func pgMountTarget(major string) string {
	if n, err := strconv.Atoi(major); err == nil && n >= 18 {
		return "/var/lib/postgresql"
	}
	return "/var/lib/postgresql/data"
}

// relDir is dir relative to the mount target, or "" when it is not under it.
func relDir(target, dir string) string {
	target, dir = path.Clean(target), path.Clean(dir)
	if dir == target {
		return "."
	}
	if rest, ok := strings.CutPrefix(dir, strings.TrimSuffix(target, "/")+"/"); ok {
		return rest
	}
	return ""
}

// envValue returns a variable of a KEY=VALUE list.
func envValue(env []string, key string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}

// checkPostgresData refuses a (re)created PostgreSQL service whose server
// is of another major than the data in its existing volume: a new major
// cannot read an old data directory (and an old one never reads a newer
// one). The on-disk major is read from PG_VERSION by a short-lived
// container with the volume mounted read-only. The desired major is the
// image's PG_MAJOR (official images), else its `postgres --version`, else
// specMajor (the spec's database.version) when the image is not on the
// engine yet. It returns the refusal and its fix, or "" when the change is
// safe: no volume yet, no data in it, or the same major.
func (t *Target) checkPostgresData(ctx context.Context, p *types.Project, svc types.ServiceConfig, cs []container.Summary, specMajor string) (refused, fix string, err error) {
	var key, target string
	for _, v := range svc.Volumes {
		if v.Type == types.VolumeTypeVolume && v.Source != "" {
			key, target = v.Source, v.Target
			break
		}
	}
	if key == "" {
		return "", "", nil
	}
	volume := p.Volumes[key].Name
	if volume == "" {
		volume = p.Name + "_" + key
	}
	if _, err := t.Client().VolumeInspect(ctx, volume, client.VolumeInspectOptions{}); err != nil {
		if cerrdefs.IsNotFound(err) {
			return "", "", nil
		}
		return "", "", fmt.Errorf("inspect volume %s: %w", volume, err)
	}

	want, wantFrom, pgdata := "", "", svc.Environment["PGDATA"]
	var refs []string
	if img, err := t.Client().ImageInspect(ctx, svc.Image); err == nil {
		refs = append(refs, svc.Image)
		if img.Config != nil {
			if m := pgMajor(envValue(img.Config.Env, "PG_MAJOR")); m != "" {
				want, wantFrom = m, "the image's PG_MAJOR"
			}
			if pgdata == nil {
				if v := envValue(img.Config.Env, "PGDATA"); v != "" {
					pgdata = &v
				}
			}
		}
	}
	// The image a container of the service runs is on the engine, and can
	// read the volume when the desired one is not pulled yet.
	for _, c := range cs {
		refs = append(refs, c.ImageID)
	}
	refs = append(refs, serviceImages(p, nil)...)
	images := t.presentImages(ctx, refs)
	if len(images) == 0 {
		return "", "", fmt.Errorf("cannot read which PostgreSQL major the data in volume %s is: no image of the stack is on the engine to read it with\n  fix: docker pull %s, then run again", volume, svc.Image)
	}
	var scan pgScan
	var scanned string
	var errs []error
	for _, image := range images[:min(len(images), maxHelperTries)] {
		out, err := t.runHelper(ctx, helper{
			Purpose: "pg-version", Image: image, User: "0:0",
			Entrypoint: []string{"sh", "-c", pgScanScript},
			Mounts:     []mount.Mount{{Type: mount.TypeVolume, Source: volume, Target: pgVolumeMount, ReadOnly: true, VolumeOptions: &mount.VolumeOptions{NoCopy: true}}},
		})
		if ctx.Err() != nil {
			return "", "", ctx.Err()
		}
		s, ok := parsePGScan(out)
		if err == nil && ok {
			scan, scanned = s, image
			break
		}
		if err == nil {
			err = fmt.Errorf("the check in a container of %s did not finish", image)
		}
		errs = append(errs, err)
	}
	if scanned == "" {
		return "", "", fmt.Errorf("cannot read which PostgreSQL major the data in volume %s is: %w", volume, errors.Join(errs...))
	}
	if want == "" && scanned == svc.Image {
		if m := serverMajor(scan.Server); m != "" {
			want, wantFrom = m, "the image's postgres --version"
		}
	}
	if want == "" {
		if want = pgMajor(specMajor); want == "" {
			return "", "", fmt.Errorf("cannot tell which PostgreSQL major image %s runs: it is not on the engine and the spec gives no database.version", svc.Image)
		}
		wantFrom = fmt.Sprintf("database.version %q", specMajor)
	}
	dataDir := pgDataDir(want)
	if pgdata != nil && *pgdata != "" {
		dataDir = *pgdata
	}
	have, problem := pgVerdict(scan.Clusters, relDir(target, dataDir), want)
	switch problem {
	case pgFine:
		return "", "", nil
	case pgElsewhere:
		where := "at its root"
		if have.Dir != "." {
			where = "in " + have.Dir + "/"
		}
		refused = fmt.Sprintf("volume %s holds PostgreSQL %s data %s, but the server of image %s looks for it in %s (mounted at %s) and would start an empty cluster there",
			volume, have.Major, where, svc.Image, dataDir, target)
		fix = "put database.version and overrides.postgres.image (and PGDATA, if overridden) back to what they were when the data was written; the data directory's place depends on them (PostgreSQL 18 moved it)"
		return refused, fix, nil
	}
	in := ""
	if have.Dir != "." {
		in = " (in " + have.Dir + "/)"
	}
	refused = fmt.Sprintf("volume %s holds PostgreSQL %s data%s; the spec asks for PostgreSQL %s (image %s, per %s), and a server of another major cannot read that data directory",
		volume, have.Major, in, want, svc.Image, wantFrom)
	oldImage, oldTarget := "postgres:"+have.Major, pgMountTarget(have.Major)
	if len(cs) > 0 {
		// The container that runs on this data names the old side exactly.
		oldImage = cs[0].Image
		for _, m := range cs[0].Mounts {
			if m.Name == volume {
				oldTarget = m.Destination
			}
		}
	}
	fix = fmt.Sprintf("set database.version back to %q (or overrides.postgres.image back to the image that ran PostgreSQL %s) to keep the data as it is;\n", have.Major, have.Major) +
		"or upgrade it by dump and restore (README, \"Upgrading PostgreSQL\"):\n" +
		upgradeSteps(upgrade{Host: t.host, Project: p.Name, Volume: volume, Key: key, From: have.Major, OldImage: oldImage, OldTarget: oldTarget, NewImage: svc.Image, NewTarget: target})
	return refused, fix, nil
}

// upgrade names what the dump-and-restore steps work on.
type upgrade struct {
	// Volume is the engine's name, Key the project's (compose labels).
	Host, Project, Volume, Key, From string
	OldImage, OldTarget              string
	NewImage, NewTarget              string
}

// upgradeSteps are the commands that move the data of one major to
// another: dump it with a server of the old major, keep a copy of the old
// volume, restore into a fresh volume with a server of the new major, then
// up. The superuser's password comes back with the dump's roles.
func upgradeSteps(u upgrade) string {
	old, next := u.Project+"-pg-old", u.Project+"-pg-new"
	dump := fmt.Sprintf("%s-pg%s.sql", u.Project, u.From)
	backup := fmt.Sprintf("%s-pg%s", u.Volume, u.From)
	wait := "until pg_isready -q -h 127.0.0.1; do sleep 1; done"
	var steps []string
	if !strings.HasPrefix(u.Host, "unix://") {
		steps = append(steps, "export DOCKER_HOST="+u.Host)
	}
	steps = append(steps,
		"orchestrator down",
		fmt.Sprintf("docker run -d --name %s -v %s:%s %s", old, u.Volume, u.OldTarget, u.OldImage),
		fmt.Sprintf("(umask 077 && docker exec %s sh -c '%s; pg_dumpall -U postgres' > %s)", old, wait, dump),
		"docker rm -f "+old,
		"docker volume create "+backup,
		fmt.Sprintf("docker run --rm -v %s:/from:ro -v %s:/to --entrypoint cp %s -a /from/. /to/", u.Volume, backup, u.OldImage),
		"docker volume rm "+u.Volume,
		// Labelled as compose labels its own, so the project owns it again
		// (down --volumes deletes it) without a configuration hash to
		// diverge from, and with orchestrator's label, without which it
		// would be another project's (Foreign).
		fmt.Sprintf("docker volume create --label com.docker.compose.project=%s --label com.docker.compose.volume=%s --label %s=%s %s", u.Project, u.Key, LabelStack, u.Project, u.Volume),
		fmt.Sprintf("docker run -d --name %s -e POSTGRES_PASSWORD=restore-only -v %s:%s %s", next, u.Volume, u.NewTarget, u.NewImage),
		fmt.Sprintf("docker exec -i %s sh -c '%s; psql -q -o /dev/null -U postgres -d postgres' < %s", next, wait, dump),
		"docker rm -f "+next,
		"orchestrator up",
	)
	return "  " + strings.Join(steps, "\n  ")
}

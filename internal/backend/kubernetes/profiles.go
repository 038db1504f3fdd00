package kubernetes

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/aipairpro/orchestrator/internal/model"
)

// ImageProfile is what Kubernetes must know about an image to run it under
// Pod Security, and what the model does not say: compose runs every image
// as its own user, while restricted pods must name a numeric non-root user
// (the kubelet refuses runAsNonRoot for an image whose USER is root or a
// name), and a read-only root filesystem needs the paths the image writes.
type ImageProfile struct {
	// Root: the image must start as root. Why says why; its pods are
	// baseline.
	Root bool
	// UID and GID the image runs as when not root (also the pod's
	// fsGroup, so volumes are writable).
	UID, GID int64
	// ReadOnlyRoot: the image writes only to its volumes and Writable.
	ReadOnlyRoot bool
	// Writable are directories that get an empty volume under a read-only
	// root filesystem.
	Writable []string
	// DataEnv, DataMount and DataSubdir: when the image runs as non-root
	// with a named volume mounted at DataMount, DataEnv points it at
	// DataMount/DataSubdir. A non-root server cannot take over a volume's
	// root directory (PostgreSQL's initdb must chmod its data directory to
	// 0700, and a fresh ext4 volume's root holds lost+found).
	DataEnv, DataMount, DataSubdir string
	// Why is the reason for the decision, for the README and the plan.
	Why string
}

// builtinProfiles are the images of the catalog, keyed by repository.
// Images not listed follow model.Service.User (see profileFor).
var builtinProfiles = map[string]ImageProfile{
	"postgres": {
		UID: 999, GID: 999, ReadOnlyRoot: true,
		Writable: []string{"/tmp", "/var/run/postgresql"},
		DataEnv:  "PGDATA", DataMount: "/var/lib/postgresql/data", DataSubdir: "pgdata",
		Why: "the official image runs as any user when its data directory is writable (its entrypoint only chowns when started as root); uid 999 is its postgres user",
	},
	"mysql": {
		UID: 999, GID: 999, ReadOnlyRoot: true,
		Writable: []string{"/tmp", "/var/run/mysqld"},
		Why:      "the official image's entrypoint and mysqld run as the mysql user (uid 999) when started as it",
	},
	"redis": {
		UID: 999, GID: 999, ReadOnlyRoot: true,
		Writable: []string{"/tmp"},
		Why:      "the official image switches to its redis user (uid 999) only when started as root; started as it, it writes only /data",
	},
	"elasticsearch": {
		UID: 1000, GID: 1000,
		Why: "Elasticsearch runs as uid 1000 (as Elastic's own operator runs it); it writes its keystore and logs inside the image, so the root filesystem stays writable",
	},
	"docker.elastic.co/elasticsearch/elasticsearch": {
		UID: 1000, GID: 1000,
		Why: "Elasticsearch runs as uid 1000 (as Elastic's own operator runs it); it writes its keystore and logs inside the image, so the root filesystem stays writable",
	},
	"temporalio/auto-setup": {
		UID: 1000, GID: 1000,
		Why: "the image's USER is temporal (uid 1000); auto-setup writes its server configuration into /etc/temporal/config at start, so the root filesystem stays writable",
	},
	"ghcr.io/gitroomhq/postiz-app": {
		Root: true,
		Why:  "the image runs nginx (port 5000, workers switch user) and pm2 as root and writes into /app and nginx's directories; upstream has no non-root mode",
	},
	"tracardi/tracardi-api": {
		Root: true,
		Why:  "the image has no non-root user and upstream runs it as root; untested as another user",
	},
	"tracardi/tracardi-gui": {
		Root: true,
		Why:  "nginx on port 80 whose entrypoint writes the API URL into the served files at start, as root",
	},
	"tracardi/apm": {
		Root: true,
		Why:  "the image has no non-root user and upstream runs it as root; untested as another user",
	},
	"tracardi/update-worker": {
		Root: true,
		Why:  "the image has no non-root user and upstream runs it as root; untested as another user",
	},
}

// defaultUID is the user an image the catalog knows nothing about runs as:
// the team's own images (and user services) must work as an arbitrary
// non-root user with a read-only root filesystem and a writable /tmp, the
// contract OpenShift's restricted policy also sets.
const defaultUID = 65532

// profileFor decides how a service's image runs. model.Service.User "0"
// (root needed, as the catalog says for Kestra) always wins; a numeric
// user replaces the profile's; an unknown image gets the default contract.
func (r *renderer) profileFor(s *model.Service) (ImageProfile, error) {
	repo := repository(s.Image)
	p, known := r.opts.ImageProfiles[repo]
	if !known {
		p, known = builtinProfiles[repo]
	}
	user := strings.TrimSpace(s.User)
	switch {
	case user == "":
		if !known {
			p = ImageProfile{UID: defaultUID, GID: defaultUID, ReadOnlyRoot: true, Writable: []string{"/tmp"},
				Why: fmt.Sprintf("an image the catalog has no profile for runs as uid %d with a read-only root filesystem and a writable /tmp", defaultUID)}
		}
		return p, nil
	case user == "0" || user == "root" || strings.HasPrefix(user, "0:") || strings.HasPrefix(user, "root:"):
		return ImageProfile{Root: true, Why: "the catalog runs it as root (user 0)"}, nil
	}
	uidText, gidText, hasGID := strings.Cut(user, ":")
	uid, err := strconv.ParseInt(uidText, 10, 64)
	if err != nil {
		return ImageProfile{}, fmt.Errorf("user %q: Kubernetes can only check a numeric user is not root; give a uid", user)
	}
	gid := uid
	if hasGID {
		if gid, err = strconv.ParseInt(gidText, 10, 64); err != nil {
			return ImageProfile{}, fmt.Errorf("user %q: the group must be numeric", user)
		}
	}
	if !known {
		p = ImageProfile{ReadOnlyRoot: true, Writable: []string{"/tmp"}}
	}
	p.Root, p.UID, p.GID = false, uid, gid
	p.Why = fmt.Sprintf("runs as uid %d, the user the catalog gives it", uid)
	return p, nil
}

// workloadPlan is what planWorkload decided for one service.
type workloadPlan struct {
	kind    string
	level   PodSecurityLevel
	why     string
	profile ImageProfile
	// claimTemplates are the named volumes that become the StatefulSet's
	// volumeClaimTemplates; other named volumes are standalone claims.
	claimTemplates map[string]bool
	// standaloneClaims: the pod mounts a claim of its own (Recreate).
	standaloneClaims bool
}

func (r *renderer) planWorkload(s *model.Service) (*workloadPlan, error) {
	p, err := r.profileFor(s)
	if err != nil {
		return nil, err
	}
	w := &workloadPlan{profile: p, claimTemplates: map[string]bool{}}
	switch {
	case s.OneShot:
		w.kind = "Job"
	case s.Stateful:
		w.kind = "StatefulSet"
	default:
		w.kind = "Deployment"
	}
	for _, v := range s.Volumes {
		if v.Volume == "" {
			continue
		}
		if w.kind == "StatefulSet" && len(r.volumeUsers[v.Volume]) == 1 {
			w.claimTemplates[v.Volume] = true
		} else {
			w.standaloneClaims = true
		}
	}
	if p.Root {
		w.level = Baseline
		w.why = "root: " + p.Why
	} else {
		w.level = Restricted
		w.why = fmt.Sprintf("uid %d: %s", p.UID, p.Why)
	}
	return w, nil
}

// writablePaths are the profile's writable directories that no mount of
// the service already covers, sorted.
func writablePaths(s *model.Service, p ImageProfile) []string {
	if !p.ReadOnlyRoot || p.Root {
		return nil
	}
	taken := map[string]bool{}
	for _, v := range s.Volumes {
		taken[v.Target] = true
	}
	var out []string
	for _, w := range p.Writable {
		if !taken[w] {
			out = append(out, w)
		}
	}
	sort.Strings(out)
	return out
}

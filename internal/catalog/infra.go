package catalog

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/aipairpro/orchestrator/internal/model"
)

// postgres adds the shared PostgreSQL and the one-shot service that gives
// each consumer its role and database. The init runs on every apply, not
// only on an empty data directory, so a component enabled later still gets
// its database, and a role's password always matches the secret state.
func (b *builder) postgres() {
	major := b.st.Database.Version
	image := b.data.Postgres[major]
	dataDir := "/var/lib/postgresql/data"
	if major >= "18" {
		// PostgreSQL 18 images keep data under a versioned subdirectory and
		// refuse to start with a volume at the old path.
		dataDir = "/var/lib/postgresql"
	}
	superPW := b.dataSecret("postgres-password", model.Password, "postgres-data")
	b.add(model.Service{
		Name: "postgres", Component: "postgres", Image: image,
		Env: map[string]string{
			"POSTGRES_USER":          "postgres",
			"POSTGRES_DB":            "postgres",
			"POSTGRES_PASSWORD_FILE": "/run/secrets/" + superPW,
		},
		SecretMounts: []model.SecretMount{{Secret: superPW, Target: "/run/secrets/" + superPW}},
		Ports:        []int{5432},
		Volumes:      []model.VolumeMount{{Volume: "postgres-data", Target: dataDir}},
		// Its own network (for the init) and that of each component with a
		// database, so a consumer reaches PostgreSQL and not the stores of
		// the other components.
		Networks: append([]string{PostgresNet}, slices.Sorted(maps.Keys(b.pgNets))...),
		// Over TCP, not the socket: on first boot the image's entrypoint
		// runs a temporary server for its init scripts that listens on the
		// socket only, and a socket probe would call that one healthy.
		Health:   health([]string{"CMD", "pg_isready", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres"}, 10),
		Stateful: true,
	})

	mounts := []model.SecretMount{{Secret: superPW, Target: "/run/secrets/" + superPW}}
	sort.Strings(b.consumers)
	for _, c := range b.consumers {
		name := "db-" + c + "-password"
		mounts = append(mounts, model.SecretMount{Secret: name, Target: "/run/secrets/" + name})
	}
	b.dep.Files = append(b.dep.Files, model.File{Path: "postgres/init.sh", Content: []byte(initScript(b.consumers)), Mode: 0o644})
	b.add(model.Service{
		Name: "postgres-init", Component: "postgres", Image: image,
		Command:      []string{"sh", "/orchestrator/init.sh"},
		Env:          map[string]string{"PGHOST": "postgres", "PGUSER": "postgres", "PGDATABASE": "postgres"},
		SecretMounts: mounts,
		FileMounts:   []model.FileMount{{File: "postgres/init.sh", Target: "/orchestrator/init.sh"}},
		// The image declares its data directory a VOLUME: without a mount
		// there, every postgres-init container would leave an anonymous
		// volume behind after a plain `down`.
		Volumes:   []model.VolumeMount{{Scratch: true, Target: dataDir}},
		Networks:  []string{PostgresNet},
		DependsOn: []model.Dependency{{Service: "postgres", Condition: model.Healthy}},
		OneShot:   true,
	})
}

// initScript creates what is missing and sets every password from its
// secret file. Passwords reach psql through \set with a backtick command,
// so they never appear in a process's arguments or in this file.
func initScript(consumers []string) string {
	var sb strings.Builder
	sb.WriteString(`#!/bin/sh
# Rendered by orchestrator. Do not edit: change stack.yaml and render again.
# Gives each consumer of the shared PostgreSQL its own role and database.
# Safe to run on every start: it creates only what is missing and sets each
# role's password from its secret file.
set -eu
PGPASSWORD="$(cat /run/secrets/postgres-password)"
export PGPASSWORD
# The server may still be restarting after its own first-boot init.
tries=0
until pg_isready --quiet; do
  tries=$((tries + 1))
  if [ "$tries" -ge 60 ]; then
    echo "postgres-init: $PGHOST does not accept connections after 60 s" >&2
    exit 1
  fi
  sleep 1
done
psql -v ON_ERROR_STOP=1 --quiet <<'SQL'
`)
	for _, c := range consumers {
		fmt.Fprintf(&sb, "-- %s\n", c)
		fmt.Fprintf(&sb, "\\set pw `cat /run/secrets/db-%s-password`\n", c)
		fmt.Fprintf(&sb, "SELECT 'CREATE ROLE \"%s\"' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '%s')\\gexec\n", c, c)
		fmt.Fprintf(&sb, "ALTER ROLE \"%s\" WITH LOGIN NOCREATEDB PASSWORD :'pw';\n", c)
		fmt.Fprintf(&sb, "SELECT 'CREATE DATABASE \"%s\" OWNER \"%s\"' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '%s')\\gexec\n", c, c, c)
		// Every role may connect to every database by default (PUBLIC has
		// CONNECT): only the owner may now.
		fmt.Fprintf(&sb, "REVOKE CONNECT ON DATABASE \"%s\" FROM PUBLIC;\n", c)
	}
	sb.WriteString("SQL\necho \"postgres-init: roles and databases are in place\"\n")
	return sb.String()
}

// proxy adds Caddy: the only service published on the host, terminating
// TLS for every route.
func (b *builder) proxy() {
	b.dep.Files = append(b.dep.Files, model.File{Path: "proxy/Caddyfile", Content: []byte(caddyfile(b.dep.TLS, b.dep.Routes)), Mode: 0o644})
	b.add(model.Service{
		Name: "proxy", Component: "proxy", Image: b.image("proxy", ""),
		FileMounts: []model.FileMount{{File: "proxy/Caddyfile", Target: "/etc/caddy/Caddyfile"}},
		Ports:      []int{80, 443},
		// On phase1.bind's address, or every interface when it is empty.
		Publish: []model.PortBinding{
			{HostIP: b.st.Phase1.Bind, Host: b.st.Phase1.HTTPPort, Target: 80, Protocol: "tcp"},
			{HostIP: b.st.Phase1.Bind, Host: b.st.Phase1.HTTPSPort, Target: 443, Protocol: "tcp"},
			{HostIP: b.st.Phase1.Bind, Host: b.st.Phase1.HTTPSPort, Target: 443, Protocol: "udp"}, // HTTP/3
		},
		Volumes: []model.VolumeMount{
			{Volume: "proxy-data", Target: "/data"},
			{Volume: "proxy-config", Target: "/config"},
		},
		Networks: []string{Edge},
		// Caddy's admin API answers on localhost inside the container.
		Health:   health(wgetHealth("http://127.0.0.1:2019/config/"), 5),
		Stateful: true,
	})
}

// overrides applies the spec's per-service overrides after everything is
// built, so they win over the catalog.
func (b *builder) overrides() {
	names := slices.Sorted(maps.Keys(b.st.Overrides))
	index := map[string]int{}
	var known []string
	for i, s := range b.dep.Services {
		index[s.Name] = i
		known = append(known, s.Name)
	}
	sort.Strings(known)
	for _, name := range names {
		o := b.st.Overrides[name]
		p := "overrides." + name
		i, ok := index[name]
		if !ok {
			hint := "rendered services: " + strings.Join(known, ", ")
			if s := suggestName(name, known); s != "" {
				hint = fmt.Sprintf("did you mean %q?", s)
			} else if reservedNames[name] {
				hint = "that service is rendered only when its component is enabled"
			}
			b.ds.Errorf(b.orig.KeyPos(p), p, hint, "override for unknown service %q", name)
			continue
		}
		s := &b.dep.Services[i]
		if o.Image != "" {
			s.Image = o.Image
		}
		if len(o.Env) > 0 {
			if s.Env == nil {
				s.Env = map[string]string{}
			}
			for k, v := range o.Env {
				if _, secret := s.SecretEnv[k]; secret || b.provided[name][k] {
					b.ds.Errorf(b.orig.KeyPos(p+".env."+k), p+".env."+k, "remove it; its value comes from the secret state", "%s of %s is provided from a secret and cannot be overridden", k, name)
					continue
				}
				s.Env[k] = v
			}
		}
		if r := o.Resources; r != nil {
			if r.Memory != "" {
				q := resource.MustParse(r.Memory) // checked by spec validation
				s.MemoryBytes = q.Value()
			}
			if r.CPUs > 0 {
				s.CPUs = r.CPUs
			}
		}
		if o.Replicas != nil {
			if (s.Stateful || s.OneShot) && *o.Replicas != 1 {
				b.ds.Errorf(b.orig.Pos(p+".replicas"), p+".replicas", "stateful and one-shot services run exactly one container", "%s cannot be scaled to %d", name, *o.Replicas)
			} else {
				s.Replicas = *o.Replicas
			}
		}
		if o.Command != nil {
			s.Command = o.Command
		}
		if h := o.Healthcheck; h != nil {
			s.Health = overrideHealth(s.Health, h.Test, h.Interval, h.Timeout, h.StartPeriod, h.Retries, h.Disable)
		}
	}
}

func overrideHealth(cur *model.Healthcheck, test []string, interval, timeout, start string, retries *int, disable bool) *model.Healthcheck {
	h := model.Healthcheck{IntervalSec: 10, TimeoutSec: 5, Retries: 5}
	if cur != nil {
		h = *cur
	}
	if disable {
		return &model.Healthcheck{Disable: true}
	}
	if len(test) > 0 {
		h.Test = test
	}
	sec := func(s string, dflt int) int {
		if s == "" {
			return dflt
		}
		d, _ := time.ParseDuration(s) // checked by spec validation
		return int(d.Round(time.Second) / time.Second)
	}
	h.IntervalSec = sec(interval, h.IntervalSec)
	h.TimeoutSec = sec(timeout, h.TimeoutSec)
	h.StartSec = sec(start, h.StartSec)
	if retries != nil {
		h.Retries = *retries
	}
	return &h
}

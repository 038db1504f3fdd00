package catalog

import (
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/aipairpro/orchestrator/internal/model"
	"github.com/aipairpro/orchestrator/templates"
)

// database registers a user of the shared PostgreSQL, which gets a role and
// a database of the same name, and returns the secret name of its password.
func (b *builder) database(name string) string {
	b.consumers = append(b.consumers, name)
	return b.dataSecret("db-"+name+"-password", model.Password, "postgres-data")
}

// databaseURL is the connection URL of a consumer of the shared
// PostgreSQL. The password is percent-encoded as URL userinfo when the
// template is expanded (the urlUserinfo encoder), so a restored password
// with '@', '#', '/' or ':' still gives a URL that parses.
func databaseURL(consumer string) string {
	return fmt.Sprintf("postgres://%s:{{ secret %q | urlUserinfo }}@postgres:5432/%s?sslmode=disable",
		url.PathEscape(consumer), "db-"+consumer+"-password", url.PathEscape(consumer))
}

// httpProbe is the healthcheck for the user's own images, whose tools we
// cannot know: busybox/GNU wget or curl, whichever the image has. The URL
// is quoted for the shell: a valid path may hold ';', '&', '$' or quotes.
func httpProbe(port int, path string) []string {
	url := shellQuote(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
	return []string{"CMD-SHELL", fmt.Sprintf("wget -q -O /dev/null %s || curl -fsS -o /dev/null %s", url, url)}
}

// shellQuote makes s one word for a POSIX shell, taken literally: as it is
// when it holds only characters no shell treats specially, else in single
// quotes, where a quote of s closes them, is escaped with a backslash and
// opens them again.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func (b *builder) app() {
	a := b.st.App
	s := model.Service{
		Name: "app", Component: "app", Image: a.Image, Command: a.Command,
		Env:   copyEnv(a.Env),
		Ports: []int{a.Port}, Networks: []string{Edge}, Replicas: *a.Replicas,
		Health: health(httpProbe(a.Port, a.Health), 30),
	}
	if a.Database {
		b.withDatabase(&s, "app")
	}
	b.teamSecrets(&s, "app", a.Secrets, a.Database, a.SecretsInEnv)
	b.add(s)
	b.route(b.host(""), "app", a.Port)
}

func (b *builder) withDatabase(s *model.Service, consumer string) {
	b.database(consumer)
	s.Networks = appendUnique(s.Networks, TeamNet)
	b.postgresOn(TeamNet)
	s.DependsOn = append(s.DependsOn, model.Dependency{Service: "postgres-init", Condition: model.Completed})
}

func (b *builder) customServices() {
	names := make([]string, 0, len(b.st.Services))
	for name := range b.st.Services {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		svc := b.st.Services[name]
		p := "services." + name
		if reservedNames[name] {
			b.ds.Errorf(b.orig.KeyPos(p), p, "rename the service; platform services use this name", "service name %q is taken by the platform", name)
			continue
		}
		s := model.Service{
			Name: name, Component: "custom", Image: svc.Image, Command: svc.Command,
			Env: copyEnv(svc.Env),
			// A route out, but not the proxy's network: nothing routes here.
			Networks: []string{Egress}, Replicas: *svc.Replicas,
		}
		if svc.Port != 0 {
			s.Ports = []int{svc.Port}
			if svc.Health != "" {
				s.Health = health(httpProbe(svc.Port, svc.Health), 30)
			}
		}
		if svc.Database {
			if why := postgresReserved(name); why != "" {
				b.ds.Errorf(b.orig.KeyPos(p), p, "rename the service: its database and role take its name",
					"service %q cannot have a database: %s", name, why)
				continue
			}
			b.withDatabase(&s, name)
		}
		b.teamSecrets(&s, p, svc.Secrets, svc.Database, svc.SecretsInEnv)
		if s.Health == nil && (b.st.Overrides[name].Healthcheck == nil) {
			b.ds.Warnf(b.orig.KeyPos(p), p, fmt.Sprintf("add `port:` and `health:`, or overrides.%s.healthcheck", name),
				"service %q has no healthcheck, so nothing can tell when it is ready", name)
		}
		b.add(s)
	}
}

// teamSecrets hands one of the team's own services its secrets, DATABASE_URL
// when it has a database and the spec's secrets: (passed through from the
// environment of whoever applies), as files: /run/secrets/<NAME>, named by
// <NAME>_FILE in its environment, so that docker inspect shows no value.
// secrets_in_env: true also puts them in its environment, as before this
// existed, for an image that reads nothing else; left unset, validate says
// where they went.
func (b *builder) teamSecrets(s *model.Service, p string, names []string, database bool, inEnv *bool) {
	vars := sortedCopy(names)
	if database {
		vars = append(vars, "DATABASE_URL")
	}
	if len(vars) == 0 {
		return
	}
	if s.Env == nil {
		s.Env = map[string]string{}
	}
	for _, v := range vars {
		if _, taken := s.Env[v+"_FILE"]; taken {
			k := p + ".env." + v + "_FILE"
			b.ds.Errorf(b.orig.KeyPos(k), k, "rename or remove it: orchestrator sets it", "%s_FILE names the file that holds %s", v, v)
			continue
		}
		s.Env[v+"_FILE"] = "/run/secrets/" + v
		b.provide(s.Name, v, v+"_FILE")
	}
	dbURL := databaseURL(s.Name)
	if database {
		s.SecretMounts = append(s.SecretMounts, model.SecretMount{Secret: b.derived(s.Name+"-database-url", dbURL), Target: "/run/secrets/DATABASE_URL"})
	}
	if len(names) > 0 {
		s.PassFiles = sortedCopy(names)
		// Keys the digest that recreates the container when a value
		// changes (see model.PassThroughKey).
		b.secret(model.PassThroughKey, model.Key32)
	}
	switch {
	case inEnv != nil && *inEnv:
		if database {
			s.SecretEnv = map[string]string{"DATABASE_URL": dbURL}
		}
		s.PassEnv = sortedCopy(names)
	case inEnv == nil:
		b.ds.Warnf(b.orig.KeyPos(p), p,
			"set secrets_in_env: true if the image reads them only from its environment (docker inspect then shows them), or secrets_in_env: false to say it reads the files",
			"%s reach %s as files (/run/secrets/<NAME>, named by <NAME>_FILE), not as environment variables", strings.Join(vars, ", "), s.Name)
	}
}

// secretEnvScript is where envFromFiles's wrapper is mounted.
const secretEnvScript = "/orchestrator/secret-env.sh"

// plainSecretRe matches a template that is one secret's value as it is.
var plainSecretRe = regexp.MustCompile(`^\{\{ secret ("[^"\\]*") \}\}$`)

// envFromFiles hands the secrets of a service whose image reads them only
// from its environment (no *_FILE variant upstream) to its process, not to
// its container: each variable's value becomes a file,
// /run/secrets/env/<NAME>, and the service's entrypoint is a wrapper
// (templates/catalog/secret-env.sh) that exports those files and then
// runs argv, the image's own entrypoint and command. A variable set that
// way is not in the container's configuration, so docker inspect and
// Portainer do not show it. argv becomes the service's command, so an
// override of the command replaces all of it, the image's entrypoint
// included.
func (b *builder) envFromFiles(s *model.Service, vars map[string]string, argv []string) {
	if !b.secretEnvShipped {
		script, err := templates.FS.ReadFile("catalog/secret-env.sh")
		if err != nil {
			panic(err)
		}
		b.dep.Files = append(b.dep.Files, model.File{Path: "orchestrator/secret-env.sh", Content: script, Mode: 0o644})
		b.secretEnvShipped = true
	}
	for _, name := range slices.Sorted(maps.Keys(vars)) {
		var secret string
		if m := plainSecretRe.FindStringSubmatch(vars[name]); m != nil {
			secret, _ = strconv.Unquote(m[1])
		} else {
			secret = b.derived(s.Name+"-"+strings.ReplaceAll(strings.ToLower(name), "_", "-"), vars[name])
		}
		s.SecretMounts = append(s.SecretMounts, model.SecretMount{Secret: secret, Target: "/run/secrets/env/" + name})
		b.provide(s.Name, name)
	}
	s.FileMounts = append(s.FileMounts, model.FileMount{File: "orchestrator/secret-env.sh", Target: secretEnvScript})
	s.Entrypoint = []string{"/bin/sh", secretEnvScript}
	s.Command = argv
}

// addEnvFromFiles adds a service whose SecretEnv goes through envFromFiles,
// with argv, the image's entrypoint and command, after the wrapper.
func (b *builder) addEnvFromFiles(s model.Service, argv []string) {
	vars := s.SecretEnv
	s.SecretEnv = nil
	b.envFromFiles(&s, vars, argv)
	b.add(s)
}

// provide records variables the catalog sets from secrets, which an
// override may not replace.
func (b *builder) provide(service string, vars ...string) {
	if b.provided == nil {
		b.provided = map[string]map[string]bool{}
	}
	if b.provided[service] == nil {
		b.provided[service] = map[string]bool{}
	}
	for _, v := range vars {
		b.provided[service][v] = true
	}
}

// postgresReserved says why PostgreSQL would refuse, or misuse, name as a
// consumer's role and database, or "" when it can be both: the system
// databases, the superuser role, the role names PostgreSQL reserves or
// treats as keywords in role positions, and the pg_ prefix it reserves
// for system roles (PostgreSQL docs: "Database Roles", "Managing
// Databases").
func postgresReserved(name string) string {
	switch name {
	case "postgres":
		return `"postgres" is PostgreSQL's superuser role and maintenance database`
	case "template0", "template1":
		return fmt.Sprintf("%q is a template database of PostgreSQL", name)
	case "public", "none":
		return fmt.Sprintf("%q is a reserved role name in PostgreSQL", name)
	case "current_user", "current_role", "session_user":
		// Keywords that stand for another role wherever a tool writes
		// them unquoted (GRANT, ALTER ROLE, pg_dumpall's output).
		return fmt.Sprintf("%q stands for another role in PostgreSQL's SQL", name)
	}
	if strings.HasPrefix(name, "pg_") {
		return "names beginning with pg_ are reserved for PostgreSQL's system roles"
	}
	return ""
}

// reservedNames are the service names the platform may render; a user
// service may not take one even when that component is off, so enabling a
// component later never collides.
var reservedNames = map[string]bool{
	"app": true, "proxy": true, "postgres": true, "postgres-init": true,
	"tracardi-api": true, "tracardi-gui": true, "tracardi-apm": true, "tracardi-update-worker": true, "tracardi-mysql": true, "tracardi-elasticsearch": true, "tracardi-redis": true,
	"kestra": true, "kestra-init": true, "postiz": true, "postiz-redis": true, "temporal": true, "temporal-elasticsearch": true, "portainer": true,
}

func (b *builder) tracardi() {
	rootPW := b.dataSecret("tracardi-mysql-root-password", model.Password, "tracardi-mysql-data")
	userPW := b.dataSecret("tracardi-mysql-password", model.Password, "tracardi-mysql-data")
	b.secret("tracardi-installation-token", model.Token)
	b.secret("tracardi-auto-profile-merging", model.Token)
	b.add(model.Service{
		Name: "tracardi-mysql", Component: "tracardi", Image: b.image("tracardi-mysql", "tracardi"),
		Env: map[string]string{
			"MYSQL_DATABASE":           "tracardi",
			"MYSQL_USER":               "tracardi",
			"MYSQL_ROOT_PASSWORD_FILE": "/run/secrets/" + rootPW,
			"MYSQL_PASSWORD_FILE":      "/run/secrets/" + userPW,
		},
		SecretMounts: []model.SecretMount{{Secret: rootPW, Target: "/run/secrets/" + rootPW}, {Secret: userPW, Target: "/run/secrets/" + userPW}},
		Ports:        []int{3306},
		Volumes:      []model.VolumeMount{{Volume: "tracardi-mysql-data", Target: "/var/lib/mysql"}},
		Networks:     []string{"tracardi"},
		// mysqladmin ping exits 0 whenever the server answers, even with
		// "access denied", which is exactly "ready for connections".
		Health:   health([]string{"CMD", "mysqladmin", "ping", "-h", "127.0.0.1", "--silent"}, 30),
		Stateful: true,
	})
	esPW := b.secret("tracardi-elasticsearch-password", model.Password)
	b.add(b.elasticsearch("tracardi-elasticsearch", "tracardi", esPW, map[string]string{
		"cluster.name": "tracardi",
		"ES_JAVA_OPTS": "-Xms1g -Xmx1g",
	}))
	redisPW := b.secret("tracardi-redis-password", model.Token)
	b.add(b.redis("tracardi-redis", "tracardi", redisPW))
	// The API and its workers share one configuration: the same stores,
	// the same credentials, the same merging secret.
	tracardiEnv := func(extra map[string]string) map[string]string {
		env := map[string]string{
			"ELASTIC_HOST":   "http://tracardi-elasticsearch:9200",
			"REDIS_HOST":     "redis://tracardi-redis:6379",
			"MYSQL_HOST":     "tracardi-mysql",
			"MYSQL_PORT":     "3306",
			"MYSQL_DATABASE": "tracardi",
			"MYSQL_USERNAME": "tracardi",
			// Tracardi's own Elasticsearch, as its superuser: a role of
			// Tracardi's own would need a job against the security API.
			"ELASTIC_HTTP_AUTH_USERNAME": "elastic",
			"LOGGING_LEVEL":              "info",
		}
		maps.Copy(env, extra)
		return env
	}
	tracardiSecretEnv := func() map[string]string {
		return map[string]string{
			"MYSQL_PASSWORD":       secretRef(userPW),
			"INSTALLATION_TOKEN":   secretRef("tracardi-installation-token"),
			"AUTO_PROFILE_MERGING": secretRef("tracardi-auto-profile-merging"),
			// Tracardi writes it into redis://:<password>@ URLs as it is:
			// a hex token needs no encoding there.
			"REDIS_PASSWORD":             secretRef(redisPW),
			"ELASTIC_HTTP_AUTH_PASSWORD": secretRef(esPW),
		}
	}
	stores := []model.Dependency{
		{Service: "tracardi-elasticsearch", Condition: model.Healthy},
		{Service: "tracardi-mysql", Condition: model.Healthy},
		{Service: "tracardi-redis", Condition: model.Healthy},
	}
	// Tracardi reads its configuration from os.environ only
	// (tracardi/config.py): its secrets go through envFromFiles. The API's
	// image runs the command of its base, tiangolo/uvicorn-gunicorn
	// (CMD /start.sh, no entrypoint).
	b.addEnvFromFiles(model.Service{
		Name: "tracardi-api", Component: "tracardi", Image: b.image("tracardi-api", "tracardi"),
		Env:       tracardiEnv(nil),
		SecretEnv: tracardiSecretEnv(),
		Ports:     []int{80},
		Networks:  []string{Edge, "tracardi"},
		DependsOn: stores,
		// The API image is Python-based; python is the one tool it surely has.
		Health: health([]string{"CMD", "python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:80/healthcheck', timeout=4)"}, 60),
	}, []string{"/start.sh"})
	b.route(b.host("tracardi-api"), "tracardi-api", 80)
	// Upstream's compose for the pinned version runs two background
	// workers beside the API: automatic profile merging (tracardi/apm in
	// worker mode), which profile merging needs, and the update worker,
	// which imports and upgrades need. Neither has a health endpoint, so
	// `up` judges them by staying running. They talk only to the stores.
	afterAPI := append(append([]model.Dependency(nil), stores...), model.Dependency{Service: "tracardi-api", Condition: model.Healthy})
	// The workers' images start with an entrypoint of their own, which
	// follows the wrapper: Tracardi/apm docker/Dockerfile and Tracardi/
	// tracardi docker.worker.Dockerfile.
	b.addEnvFromFiles(model.Service{
		Name: "tracardi-apm", Component: "tracardi", Image: b.image("tracardi-apm", "tracardi"),
		Env:       tracardiEnv(map[string]string{"MODE": "worker", "PAUSE": "15"}),
		SecretEnv: tracardiSecretEnv(),
		Networks:  []string{"tracardi"},
		DependsOn: afterAPI,
	}, []string{"/opt/venv/bin/python3", "app/main.py"})
	b.addEnvFromFiles(model.Service{
		Name: "tracardi-update-worker", Component: "tracardi", Image: b.image("tracardi-update-worker", "tracardi"),
		Env:       tracardiEnv(nil),
		SecretEnv: tracardiSecretEnv(),
		Networks:  []string{"tracardi"},
		DependsOn: afterAPI,
	}, []string{"huey_consumer.py", "tracardi.worker.worker.queue"})
	b.add(model.Service{
		Name: "tracardi-gui", Component: "tracardi", Image: b.image("tracardi-gui", "tracardi"),
		// The GUI asks for its API's URL at first visit; this is what to type.
		Env:       map[string]string{"API_URL": b.publicURL("tracardi-api")},
		Ports:     []int{80},
		Networks:  []string{Edge},
		DependsOn: []model.Dependency{{Service: "tracardi-api", Condition: model.Healthy}},
		Health:    health(wgetHealth("http://127.0.0.1:80/"), 10),
	})
	b.route(b.host("tracardi"), "tracardi-gui", 80)
}

// redis is a component's own Redis, on that component's network, with a
// password: requirepass in a configuration file that is a secret, which
// redis-server reads as its config file, so the password is in no command
// line and no environment. The healthcheck authenticates through
// REDISCLI_AUTH, set from the password file for redis-cli's process only.
func (b *builder) redis(name, component, password string) model.Service {
	conf := b.derived(name+".conf", "# Rendered by orchestrator: "+name+"'s configuration. Holds a secret.\n"+
		fmt.Sprintf("requirepass {{ secret %q | redisConf }}\n", password))
	return model.Service{
		Name: name, Component: component, Image: b.image(name, component),
		Command: []string{"redis-server", "/run/secrets/" + conf, "--save", "60", "1", "--loglevel", "warning"},
		SecretMounts: []model.SecretMount{
			{Secret: conf, Target: "/run/secrets/" + conf},
			{Secret: password, Target: "/run/secrets/" + password},
		},
		Ports:    []int{6379},
		Volumes:  []model.VolumeMount{{Volume: name + "-data", Target: "/data"}},
		Networks: []string{component},
		Health:   health([]string{"CMD-SHELL", `REDISCLI_AUTH="$(cat /run/secrets/` + password + `)" redis-cli ping | grep -q PONG`}, 5),
		Stateful: true,
	}
}

// elasticsearch is a component's own single-node Elasticsearch 7, on that
// component's network, with security on: the built-in elastic user's
// password is the bootstrap password the image's entrypoint puts into the
// keystore from ELASTIC_PASSWORD_FILE, which it reads only at mode 0400 or
// 0600 (elasticsearch-env-from-file), as the image's user (uid 1000). A
// single node needs no TLS between nodes (there are none).
func (b *builder) elasticsearch(name, component, password string, env map[string]string) model.Service {
	pwFile := "/run/secrets/" + password
	all := map[string]string{
		"discovery.type":         "single-node",
		"xpack.security.enabled": "true",
		"ELASTIC_PASSWORD_FILE":  pwFile,
	}
	maps.Copy(all, env)
	return model.Service{
		Name: name, Component: component, Image: b.image(name, component),
		Env:          all,
		SecretMounts: []model.SecretMount{{Secret: password, Target: pwFile, UID: "1000", Mode: 0o400}},
		Ports:        []int{9200},
		Volumes:      []model.VolumeMount{{Volume: name + "-data", Target: "/usr/share/elasticsearch/data"}},
		Networks:     []string{component},
		Health:       health(esHealth(pwFile), 60),
		Stateful:     true,
	}
}

// esHealth asks for a yellow cluster as the elastic user. The password
// reaches curl through a config on its standard input (-K -), not its
// command line, which every process on the host can read; backslashes and
// double quotes are escaped for curl's config syntax.
func esHealth(pwFile string) []string {
	return []string{"CMD-SHELL", `printf 'user = "elastic:%s"\n' "$(sed 's/[\\"]/\\&/g' ` + pwFile + `)" | ` +
		`curl -fsS -K - 'http://127.0.0.1:9200/_cluster/health?wait_for_status=yellow&timeout=5s' >/dev/null`}
}

func (b *builder) kestra() {
	b.database("kestra")
	b.secret("kestra-admin-password", model.Password)
	// Kestra keeps SECRET inputs and outputs in its database, encrypted
	// with this key.
	b.dataSecret("kestra-encryption-key", model.Key32, "postgres-data")
	tmpl, err := templates.FS.ReadFile("catalog/kestra-application.yml")
	if err != nil {
		panic(err)
	}
	s := model.Service{
		Name: "kestra", Component: "kestra", Image: b.image("kestra", "kestra"),
		Ports:     []int{8080, 8081},
		Volumes:   []model.VolumeMount{{Volume: "kestra-data", Target: "/app/storage"}},
		Networks:  []string{Edge, "kestra"},
		DependsOn: []model.Dependency{{Service: "postgres-init", Condition: model.Completed}},
		Health:    health([]string{"CMD", "curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8081/health"}, 120),
	}
	// Script tasks' working directory: never the world-writable /tmp.
	workDir := "/app/wd" // in the container, under /app, which the image's user owns
	if b.st.Components.KestraDockerTasks() {
		// Opted in (components.kestra.docker_tasks): the Docker task runner
		// starts sibling containers through the host's socket, which needs
		// root in the container (upstream's compose does the same), and
		// hands them the working directory by its host path, which must
		// therefore be the same on both sides: a directory of this stack's
		// under /var/lib (made by the engine, 0755, root's), not /tmp.
		workDir = "/var/lib/orchestrator/" + b.st.Name + "/kestra-wd"
		s.User = "0" // root, by uid: works whether or not the image has /etc/passwd
		s.Volumes = append(s.Volumes,
			model.VolumeMount{HostPath: "/var/run/docker.sock", Target: "/var/run/docker.sock"},
			model.VolumeMount{HostPath: workDir, Target: workDir})
	} else {
		// Kestra runs as its image's user (kestra), with no socket; script
		// tasks run in its container (taskRunner: Process). The storage
		// volume is the user's after kestra-init (made by the engine as
		// root's, or written by root while docker_tasks was on).
		b.add(model.Service{
			Name: "kestra-init", Component: "kestra", Image: b.image("kestra", "kestra"),
			User:       "0",
			Entrypoint: []string{"/bin/sh", "-c"},
			Command:    []string{"find /app/storage ! -user kestra -exec chown kestra:kestra {} +"},
			Volumes:    []model.VolumeMount{{Volume: "kestra-data", Target: "/app/storage"}},
			Isolated:   true,
			OneShot:    true,
		})
		s.DependsOn = append(s.DependsOn, model.Dependency{Service: "kestra-init", Condition: model.Completed})
	}
	// The configuration's last block is kestra:; tasks: joins it.
	cfg := b.derived("kestra-application.yml", string(tmpl)+fmt.Sprintf("  tasks:\n    tmp-dir:\n      path: %s/tmp\n", workDir))
	s.Command = []string{"server", "standalone", "--config", "/run/secrets/" + cfg}
	s.SecretMounts = []model.SecretMount{{Secret: cfg, Target: "/run/secrets/" + cfg}}
	b.add(s)
	b.postgresOn("kestra")
	b.route(b.host("kestra"), "kestra", 8080)
}

// temporalDynamicConfig is where Temporal reads its dynamic configuration.
const temporalDynamicConfig = "/etc/temporal/config/dynamicconfig/orchestrator.yaml"

func (b *builder) postiz() {
	b.database("postiz")
	// postgres-init creates Temporal's database: auto-setup creates none
	// when the database is named after the user (it expects the postgres
	// image's POSTGRES_DB to have made it), and with Elasticsearch
	// visibility it needs no second one. SKIP_DB_CREATE says so outright.
	templPW := b.database("temporal")
	b.secret("postiz-jwt-secret", model.Token)
	redisPW := b.secret("postiz-redis-password", model.Token)
	b.add(b.redis("postiz-redis", "postiz", redisPW))
	esPW := b.secret("temporal-elasticsearch-password", model.Password)
	b.add(b.elasticsearch("temporal-elasticsearch", "postiz", esPW, map[string]string{
		"ES_JAVA_OPTS": "-Xms256m -Xmx256m",
		"cluster.routing.allocation.disk.threshold_enabled":     "true",
		"cluster.routing.allocation.disk.watermark.low":         "512mb",
		"cluster.routing.allocation.disk.watermark.high":        "256mb",
		"cluster.routing.allocation.disk.watermark.flood_stage": "128mb",
	}))
	b.postgresOn("postiz")
	dyn, err := templates.FS.ReadFile("catalog/temporal-dynamicconfig.yaml")
	if err != nil {
		panic(err)
	}
	b.dep.Files = append(b.dep.Files, model.File{Path: "temporal/dynamicconfig.yaml", Content: dyn, Mode: 0o644})
	// auto-setup reads POSTGRES_PWD and ES_PWD from its environment only:
	// its entrypoint renders the server's configuration from them with
	// dockerize and hands them to its setup (SQL_PASSWORD, curl --user);
	// none has a file variant. So envFromFiles, then the image's
	// ENTRYPOINT and CMD (temporalio/docker-builds server.Dockerfile).
	b.addEnvFromFiles(model.Service{
		Name: "temporal", Component: "postiz", Image: b.image("temporal", "postiz"),
		FileMounts: []model.FileMount{{File: "temporal/dynamicconfig.yaml", Target: temporalDynamicConfig}},
		Env: map[string]string{
			"DB":             "postgres12",
			"DB_PORT":        "5432",
			"POSTGRES_SEEDS": "postgres",
			"POSTGRES_USER":  "temporal",
			"SKIP_DB_CREATE": "true",
			// The auto-setup image ships only config/dynamicconfig/docker.yaml;
			// upstream's compose names development-sql.yaml from a bind mount
			// of its repository. The stack ships its own, as a config.
			"DYNAMIC_CONFIG_FILE_PATH": temporalDynamicConfig,
			"ENABLE_ES":                "true",
			"ES_SEEDS":                 "temporal-elasticsearch",
			"ES_VERSION":               "v7",
			"ES_USER":                  "elastic",
			"TEMPORAL_NAMESPACE":       "default",
		},
		SecretEnv: map[string]string{"POSTGRES_PWD": secretRef(templPW), "ES_PWD": secretRef(esPW)},
		Ports:     []int{7233},
		Networks:  []string{"postiz"},
		DependsOn: []model.Dependency{
			{Service: "postgres-init", Condition: model.Completed},
			{Service: "temporal-elasticsearch", Condition: model.Healthy},
		},
		Health: &model.Healthcheck{Test: []string{"CMD", "temporal", "operator", "cluster", "health", "--address", "temporal:7233"}, IntervalSec: 10, TimeoutSec: 5, Retries: 10, StartSec: 30},
	}, []string{"/etc/temporal/entrypoint.sh", "autosetup"})
	// Postiz's worker never reconnects to Temporal (gitroomhq/postiz-app
	// #1748, #2035) and Docker restarts only containers that exit: the
	// watchdog makes the container exit when the worker has no connection
	// (see the script's header).
	watchdog, err := templates.FS.ReadFile("catalog/postiz-watchdog.sh")
	if err != nil {
		panic(err)
	}
	const watchdogPath = "/orchestrator/postiz-watchdog.sh"
	b.dep.Files = append(b.dep.Files, model.File{Path: "postiz/watchdog.sh", Content: watchdog, Mode: 0o644})
	pub := b.publicURL("postiz")
	// Postiz reads process.env only (no *_FILE): envFromFiles. Its image
	// has no entrypoint of its own (node's passes a command through); the
	// watchdog, without arguments, runs the image's own command,
	// `sh -c "nginx && pnpm run pm2"`, as PID 1 (exec).
	b.addEnvFromFiles(model.Service{
		Name: "postiz", Component: "postiz", Image: b.image("postiz", "postiz"),
		FileMounts: []model.FileMount{{File: "postiz/watchdog.sh", Target: watchdogPath}},
		Env: map[string]string{
			// Postiz checks these match the browser's URL exactly, with no
			// trailing slash; cookies need HTTPS, which the proxy provides.
			"MAIN_URL":                pub,
			"FRONTEND_URL":            pub,
			"NEXT_PUBLIC_BACKEND_URL": pub + "/api",
			"BACKEND_INTERNAL_URL":    "http://localhost:3000",
			"TEMPORAL_ADDRESS":        "temporal:7233",
			"IS_GENERAL":              "true",
			// Upstream's development default is "false": anyone on the
			// internet could sign up. With "true" the first organisation
			// can still register, and nobody after it.
			"DISABLE_REGISTRATION":         "true",
			"RUN_CRON":                     "true",
			"STORAGE_PROVIDER":             "local",
			"UPLOAD_DIRECTORY":             "/uploads",
			"NEXT_PUBLIC_UPLOAD_DIRECTORY": "/uploads",
			"API_LIMIT":                    "30",
		},
		SecretEnv: map[string]string{
			"DATABASE_URL": databaseURL("postiz"),
			"JWT_SECRET":   secretRef("postiz-jwt-secret"),
			// ioredis reads the password from the URL's userinfo, decoded.
			"REDIS_URL": fmt.Sprintf("redis://:{{ secret %q | urlUserinfo }}@postiz-redis:6379", redisPW),
		},
		Ports:    []int{5000},
		Volumes:  []model.VolumeMount{{Volume: "postiz-uploads", Target: "/uploads"}},
		Networks: []string{Edge, "postiz"},
		DependsOn: []model.Dependency{
			{Service: "postgres-init", Condition: model.Completed},
			{Service: "postiz-redis", Condition: model.Healthy},
			// Postiz connects its Temporal worker once, at start: it must
			// find Temporal healthy or posts stay queued. A daemon restart
			// ignores depends_on; the watchdog covers that.
			{Service: "temporal", Condition: model.Healthy},
		},
		// The image has node but no curl or wget.
		Health: &model.Healthcheck{Test: []string{"CMD", "node", "-e",
			"const r=require('http').get('http://127.0.0.1:5000/',res=>process.exit(res.statusCode<500?0:1));r.on('error',()=>process.exit(1));r.setTimeout(4000,()=>{r.destroy();process.exit(1)})"},
			IntervalSec: 30, TimeoutSec: 10, Retries: 5, StartSec: 120},
	}, []string{"sh", watchdogPath})
	b.route(b.host("postiz"), "postiz", 5000)
}

func (b *builder) portainer() {
	pw := b.dataSecret("portainer-admin-password", model.Password, "portainer-data")
	b.add(model.Service{
		Name: "portainer", Component: "portainer", Image: b.image("portainer", "portainer"),
		// The password file creates the admin at first start, so the
		// instance never sits in its 5-minute "create an admin" window;
		// -H makes the local Docker the first environment; the trusted
		// origin lets the UI work behind the proxy.
		Command: []string{"-H", "unix:///var/run/docker.sock",
			"--admin-password-file", "/run/secrets/" + pw,
			"--trusted-origins", b.host("portainer")},
		SecretMounts: []model.SecretMount{{Secret: pw, Target: "/run/secrets/" + pw}},
		Ports:        []int{9000},
		Volumes: []model.VolumeMount{
			{Volume: "portainer-data", Target: "/data"},
			{HostPath: "/var/run/docker.sock", Target: "/var/run/docker.sock"},
		},
		Networks: []string{Edge},
		Health:   health(wgetHealth("http://127.0.0.1:9000/api/system/status"), 20),
		Stateful: true,
	})
	b.route(b.host("portainer"), "portainer", 9000)
}

func copyEnv(env map[string]string) map[string]string {
	if len(env) == 0 {
		return nil
	}
	out := make(map[string]string, len(env))
	for k, v := range env {
		out[k] = v
	}
	return out
}

func sortedCopy(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	out := append([]string(nil), in...)
	sort.Strings(out)
	return out
}

func appendUnique(list []string, v string) []string {
	for _, x := range list {
		if x == v {
			return list
		}
	}
	return append(list, v)
}

// Package spec is the stack spec (stack.yaml): its types, loading with source
// positions, validation with diagnostics, defaults, and its JSON Schema.
package spec

// Version is the only spec version this build reads.
const Version = 1

// Stack is one platform deployment: the team's app, the optional platform
// components, the shared database and the user's own services.
type Stack struct {
	// Version of the spec format; must be 1.
	Version int `yaml:"version" json:"version" jsonschema:"required,enum=1" jsonschema_description:"Spec format version."`
	// Name is a DNS label: the compose project and the Kubernetes namespace.
	Name string `yaml:"name" json:"name" jsonschema:"required" jsonschema_description:"DNS label used as compose project name and Kubernetes namespace."`
	// Domain is the apex the app is served at; components get <component>.<domain>.
	Domain string `yaml:"domain" json:"domain" jsonschema:"required" jsonschema_description:"The app is served at this domain and each component at <component>.<domain>."`
	// TLS configures certificates for the reverse proxy.
	TLS TLS `yaml:"tls,omitempty" json:"tls,omitempty" jsonschema_description:"Certificates for the reverse proxy."`
	// App is the team's own application.
	App *App `yaml:"app,omitempty" json:"app,omitempty" jsonschema_description:"The team's own application."`
	// Components switches the platform components on and pins their versions.
	Components Components `yaml:"components,omitempty" json:"components,omitempty" jsonschema_description:"Platform components."`
	// Database is the shared PostgreSQL instance.
	Database Database `yaml:"database,omitempty" json:"database,omitempty" jsonschema_description:"The shared PostgreSQL instance."`
	// Services are the user's own extra services (workers, cron, ...).
	Services map[string]Service `yaml:"services,omitempty" json:"services,omitempty" jsonschema_description:"The user's own extra services, keyed by service name."`
	// Overrides change rendered services, keyed by rendered service name.
	Overrides map[string]Override `yaml:"overrides,omitempty" json:"overrides,omitempty" jsonschema_description:"Changes to rendered services, keyed by rendered service name."`
	// Phase1 is the single-host Docker Compose target.
	Phase1 Phase1 `yaml:"phase1,omitempty" json:"phase1,omitempty" jsonschema_description:"Phase 1: Docker Compose on one host."`
	// Phase2 is the Kubernetes + OpenTofu target.
	Phase2 Phase2 `yaml:"phase2,omitempty" json:"phase2,omitempty" jsonschema_description:"Phase 2: managed Kubernetes provisioned with OpenTofu."`

	src *source
}

// TLS configures how the reverse proxy gets certificates.
type TLS struct {
	// Mode is "acme" (public certificates, the default) or "internal" (a local CA, for laptops and offline use).
	Mode string `yaml:"mode,omitempty" json:"mode,omitempty" jsonschema:"enum=acme,enum=internal" jsonschema_description:"acme: public certificates from an ACME CA; internal: a local CA (works offline)."`
	// Email is the ACME account contact.
	Email string `yaml:"email,omitempty" json:"email,omitempty" jsonschema_description:"ACME account contact address."`
}

// App is the team's own application, served at the apex domain.
type App struct {
	Image    string            `yaml:"image" json:"image" jsonschema:"required" jsonschema_description:"Image reference pinned to a tag or digest."`
	Port     int               `yaml:"port,omitempty" json:"port,omitempty" jsonschema:"minimum=1,maximum=65535" jsonschema_description:"Port the app listens on (default 8080)."`
	Health   string            `yaml:"health,omitempty" json:"health,omitempty" jsonschema_description:"HTTP health path (default /healthz)."`
	Replicas *int              `yaml:"replicas,omitempty" json:"replicas,omitempty" jsonschema:"minimum=0" jsonschema_description:"Number of containers (default 1)."`
	Command  []string          `yaml:"command,omitempty" json:"command,omitempty" jsonschema_description:"Overrides the image's command."`
	Env      map[string]string `yaml:"env,omitempty" json:"env,omitempty" jsonschema_description:"Plain environment variables (never secrets)."`
	Secrets  []string          `yaml:"secrets,omitempty" json:"secrets,omitempty" jsonschema_description:"Names of secret environment variables; values are read from the environment when applying."`
	Database bool              `yaml:"database,omitempty" json:"database,omitempty" jsonschema_description:"Give the app its own PostgreSQL database and user; DATABASE_URL is provided."`

	// SecretsInEnv also puts DATABASE_URL and the secrets in the
	// container's environment, where docker inspect shows them; they are
	// always files (/run/secrets/<NAME>, named by <NAME>_FILE).
	SecretsInEnv *bool `yaml:"secrets_in_env,omitempty" json:"secrets_in_env,omitempty" jsonschema_description:"Also put DATABASE_URL and the secrets in the container's environment (docker inspect shows them), for an image that reads nothing else; they are always files: /run/secrets/<NAME>, named by <NAME>_FILE. Default false."`
}

// Components lists the platform components.
type Components struct {
	Tracardi  *Component       `yaml:"tracardi,omitempty" json:"tracardi,omitempty" jsonschema_description:"Tracardi customer data platform (API + GUI, with MySQL, Elasticsearch and Redis)."`
	Kestra    *KestraComponent `yaml:"kestra,omitempty" json:"kestra,omitempty" jsonschema_description:"Kestra workflow orchestration (standalone server on PostgreSQL)."`
	Postiz    *Component       `yaml:"postiz,omitempty" json:"postiz,omitempty" jsonschema_description:"Postiz social media scheduling (with Redis and Temporal)."`
	Portainer *Component       `yaml:"portainer,omitempty" json:"portainer,omitempty" jsonschema_description:"Portainer CE management UI."`
}

// Component switches one platform component on and may pin its version.
type Component struct {
	Enabled bool   `yaml:"enabled" json:"enabled" jsonschema_description:"Deploy this component."`
	Version string `yaml:"version,omitempty" json:"version,omitempty" jsonschema_description:"Upstream image tag; default is the catalog's pin."`
}

// KestraComponent switches Kestra on, may pin its version, and opts in to
// its Docker task runner.
type KestraComponent struct {
	Enabled bool   `yaml:"enabled" json:"enabled" jsonschema_description:"Deploy this component."`
	Version string `yaml:"version,omitempty" json:"version,omitempty" jsonschema_description:"Upstream image tag; default is the catalog's pin."`
	// DockerTasks gives Kestra the host's Docker socket, read-write, and
	// runs it as root, so that script tasks run in containers of their own
	// (Kestra's Docker task runner). Anyone who can edit a flow then
	// controls the host. Off by default: Kestra runs as its image's user,
	// and script tasks run inside its container (taskRunner: Process).
	DockerTasks bool `yaml:"docker_tasks,omitempty" json:"docker_tasks,omitempty" jsonschema_description:"Give Kestra the host's Docker socket (read-write, as root) so script tasks run in containers: anyone who can edit a flow controls the host. Default off: script tasks need taskRunner: {type: io.kestra.plugin.core.runner.Process}."`
}

// Database is the shared PostgreSQL instance.
type Database struct {
	Version string `yaml:"version,omitempty" json:"version,omitempty" jsonschema:"enum=16,enum=17,enum=18" jsonschema_description:"PostgreSQL major version (default 17)."`
	Storage string `yaml:"storage,omitempty" json:"storage,omitempty" jsonschema_description:"Volume size, as a Kubernetes quantity (default 20Gi)."`
}

// Service is one of the user's own services.
type Service struct {
	Image    string            `yaml:"image" json:"image" jsonschema:"required" jsonschema_description:"Image reference pinned to a tag or digest."`
	Command  []string          `yaml:"command,omitempty" json:"command,omitempty" jsonschema_description:"Overrides the image's command."`
	Env      map[string]string `yaml:"env,omitempty" json:"env,omitempty" jsonschema_description:"Plain environment variables (never secrets)."`
	Secrets  []string          `yaml:"secrets,omitempty" json:"secrets,omitempty" jsonschema_description:"Names of secret environment variables; values are read from the environment when applying."`
	Database bool              `yaml:"database,omitempty" json:"database,omitempty" jsonschema_description:"Give the service its own PostgreSQL database and user; DATABASE_URL is provided."`
	Port     int               `yaml:"port,omitempty" json:"port,omitempty" jsonschema:"minimum=1,maximum=65535" jsonschema_description:"Port the service listens on, if any."`
	Health   string            `yaml:"health,omitempty" json:"health,omitempty" jsonschema_description:"HTTP health path on port."`
	Replicas *int              `yaml:"replicas,omitempty" json:"replicas,omitempty" jsonschema:"minimum=0" jsonschema_description:"Number of containers (default 1)."`

	// SecretsInEnv: as App.SecretsInEnv.
	SecretsInEnv *bool `yaml:"secrets_in_env,omitempty" json:"secrets_in_env,omitempty" jsonschema_description:"Also put DATABASE_URL and the secrets in the container's environment (docker inspect shows them), for an image that reads nothing else; they are always files: /run/secrets/<NAME>, named by <NAME>_FILE. Default false."`
}

// Override changes one rendered service.
type Override struct {
	Image       string            `yaml:"image,omitempty" json:"image,omitempty" jsonschema_description:"Replaces the image."`
	Env         map[string]string `yaml:"env,omitempty" json:"env,omitempty" jsonschema_description:"Environment variables merged over the rendered ones."`
	Resources   *Resources        `yaml:"resources,omitempty" json:"resources,omitempty" jsonschema_description:"Resource limits."`
	Replicas    *int              `yaml:"replicas,omitempty" json:"replicas,omitempty" jsonschema:"minimum=0" jsonschema_description:"Number of containers."`
	Command     []string          `yaml:"command,omitempty" json:"command,omitempty" jsonschema_description:"Replaces the command."`
	Healthcheck *Healthcheck      `yaml:"healthcheck,omitempty" json:"healthcheck,omitempty" jsonschema_description:"Replaces the healthcheck (compose's shape)."`
}

// Resources are limits for one service.
type Resources struct {
	Memory string  `yaml:"memory,omitempty" json:"memory,omitempty" jsonschema_description:"Memory limit as a Kubernetes quantity, e.g. 512Mi or 2Gi."`
	CPUs   float64 `yaml:"cpus,omitempty" json:"cpus,omitempty" jsonschema:"minimum=0" jsonschema_description:"CPU limit in cores, e.g. 0.5."`
}

// Healthcheck is a container healthcheck in compose's shape.
type Healthcheck struct {
	Test        []string `yaml:"test,omitempty" json:"test,omitempty" jsonschema_description:"[CMD, arg...], [CMD-SHELL, command] or [NONE]."`
	Interval    string   `yaml:"interval,omitempty" json:"interval,omitempty" jsonschema_description:"Duration, e.g. 10s."`
	Timeout     string   `yaml:"timeout,omitempty" json:"timeout,omitempty" jsonschema_description:"Duration, e.g. 5s."`
	Retries     *int     `yaml:"retries,omitempty" json:"retries,omitempty" jsonschema:"minimum=0"`
	StartPeriod string   `yaml:"start_period,omitempty" json:"start_period,omitempty" jsonschema_description:"Duration, e.g. 30s."`
	Disable     bool     `yaml:"disable,omitempty" json:"disable,omitempty" jsonschema_description:"Turn the healthcheck off."`
}

// Phase1 is the Docker Compose target.
type Phase1 struct {
	// Host is the Docker host: unix://, tcp:// or ssh://user@host. Empty
	// means DOCKER_HOST or the current docker context.
	Host string `yaml:"host,omitempty" json:"host,omitempty" jsonschema_description:"Docker host (unix://, tcp:// or ssh://user@host); default: DOCKER_HOST or the docker context."`
	// HTTPPort and HTTPSPort are the host ports the proxy publishes.
	HTTPPort  int `yaml:"http_port,omitempty" json:"http_port,omitempty" jsonschema:"minimum=1,maximum=65535" jsonschema_description:"Host port for HTTP (default 80)."`
	HTTPSPort int `yaml:"https_port,omitempty" json:"https_port,omitempty" jsonschema:"minimum=1,maximum=65535" jsonschema_description:"Host port for HTTPS and HTTP/3 (default 443)."`
	// Bind is the host IP address the proxy publishes those ports on.
	// Empty means every interface, as a server wants; a laptop binds
	// 127.0.0.1 so nothing on its network reaches the stack.
	Bind string `yaml:"bind,omitempty" json:"bind,omitempty" jsonschema_description:"Host IP address the proxy publishes its ports on, e.g. 127.0.0.1 for this machine only; default: every interface."`
}

// Phase2 is the Kubernetes + OpenTofu target.
type Phase2 struct {
	Provider string         `yaml:"provider,omitempty" json:"provider,omitempty" jsonschema:"enum=aws,enum=gcp,enum=azure" jsonschema_description:"Cloud provider."`
	Region   string         `yaml:"region,omitempty" json:"region,omitempty" jsonschema_description:"Cloud region, e.g. eu-west-1."`
	Database Phase2Database `yaml:"database,omitempty" json:"database,omitempty" jsonschema_description:"Database placement in Phase 2."`
}

// Phase2Database says where PostgreSQL runs in Phase 2.
type Phase2Database struct {
	Managed bool `yaml:"managed,omitempty" json:"managed,omitempty" jsonschema_description:"Use the provider's managed PostgreSQL (RDS, Cloud SQL, Azure Database)."`
}

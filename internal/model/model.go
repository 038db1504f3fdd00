// Package model is the backend-neutral description of a deployment: what
// runs, how it is wired and what it needs. The catalog builds it from the
// spec; each backend (compose today, Kubernetes later) renders it.
package model

// Deployment is everything one stack deploys.
type Deployment struct {
	// Name is the stack name: compose project, Kubernetes namespace.
	Name string
	// Domain is the apex domain the routes hang off.
	Domain string
	// TLS is how the proxy gets certificates.
	TLS TLS
	// Services are sorted by name.
	Services []Service
	// Volumes are named, persistent volumes, sorted by name.
	Volumes []Volume
	// Networks are sorted by name.
	Networks []Network
	// Secrets are the secrets the services mount or read, sorted by name.
	Secrets []Secret
	// Files are non-secret files the services mount, sorted by path.
	Files []File
	// Routes are the public host names, served by the proxy.
	Routes []Route
}

// TLS says how the proxy gets certificates.
type TLS struct {
	// Mode is "acme" or "internal".
	Mode string
	// Email is the ACME account contact; may be empty.
	Email string
}

// Service is one long-running container (or a one-shot task).
type Service struct {
	Name string
	// Component is the platform component the service belongs to
	// ("app", "tracardi", ...); "custom" for the user's own services.
	Component  string
	Image      string
	Command    []string
	Entrypoint []string
	User       string
	// Env holds plain values. Never secrets.
	Env map[string]string
	// PassEnv names variables whose values are taken from the environment
	// of the process that applies the stack.
	PassEnv []string
	// PassFiles names variables whose values are taken from the
	// environment of the process that applies the stack and handed to the
	// container as files, /run/secrets/<NAME>.
	PassFiles []string
	// SecretEnv holds variables whose values are templates over secrets,
	// e.g. `postgres://app:{{secret "db-app-password"}}@postgres:5432/app`.
	SecretEnv map[string]string
	// SecretMounts mount secrets as files.
	SecretMounts []SecretMount
	// FileMounts mount the deployment's non-secret files.
	FileMounts []FileMount
	// Ports the service listens on inside its network.
	Ports []int
	// Publish binds host ports; only the proxy has any.
	Publish []PortBinding
	Volumes []VolumeMount
	// Networks the service joins.
	Networks []string
	// Isolated services join no network at all (a one-shot that only
	// touches its volumes).
	Isolated  bool
	DependsOn []Dependency
	Health    *Healthcheck
	Replicas  int
	// MemoryBytes is the memory limit; 0 means none.
	MemoryBytes int64
	// CPUs is the CPU limit in cores; 0 means none.
	CPUs float64
	// OneShot services run to completion; dependants wait for success.
	OneShot bool
	// Stateful services keep data in volumes (databases, stores).
	Stateful bool
}

// Condition is what a dependant waits for.
type Condition string

// Conditions, in compose's words.
const (
	Started   Condition = "service_started"
	Healthy   Condition = "service_healthy"
	Completed Condition = "service_completed_successfully"
)

// Dependency is one start-order edge.
type Dependency struct {
	Service   string
	Condition Condition
}

// Healthcheck is a command run inside the container, in compose's shape:
// Test starts with CMD, CMD-SHELL or NONE.
type Healthcheck struct {
	Test        []string
	IntervalSec int
	TimeoutSec  int
	Retries     int
	StartSec    int
	Disable     bool
}

// SecretMount mounts one secret as a file at Target, owned by root and
// readable by everyone in the container (mode 0444), unless UID and Mode
// say otherwise (an image that refuses a password file others can read).
type SecretMount struct {
	Secret string
	Target string
	UID    string
	Mode   uint32
}

// FileMount mounts one of the deployment's files at Target, read-only.
type FileMount struct {
	File   string
	Target string
}

// PortBinding publishes a container port on the host.
type PortBinding struct {
	HostIP   string
	Host     int
	Target   int
	Protocol string
}

// VolumeMount is a named volume (Volume), a host path (HostPath), or, with
// both empty and Scratch set, an empty in-memory directory that lives as
// long as the container.
type VolumeMount struct {
	Volume   string
	HostPath string
	Scratch  bool
	Target   string
	ReadOnly bool
}

// Volume is a named persistent volume.
type Volume struct {
	Name string
	// SizeBytes is the requested size (used by Kubernetes; compose ignores it).
	SizeBytes int64
}

// Network is a named network. Internal networks have no route out.
type Network struct {
	Name     string
	Internal bool
}

// PassThroughKey is the generated secret that keys the digest of the values
// a service's PassFiles take from the applier's environment: a backend
// labels the service with it, so that a changed value recreates the
// container (file contents are not in compose's configuration hash)
// without revealing the value, however short, to who can read labels.
const PassThroughKey = "pass-through-digest-key"

// SecretKind says how a generated secret looks.
type SecretKind string

// Secret kinds.
const (
	// Password: 32 letters and digits with at least one of each class and a '-'.
	Password SecretKind = "password"
	// Token: 64 hex digits.
	Token SecretKind = "token"
	// Key32: 32 random bytes, base64.
	Key32 SecretKind = "key32"
)

// Secret is either generated once (Generate) or derived from other secrets
// by a template (Template), e.g. a config file with a password inside.
type Secret struct {
	Name     string
	Generate SecretKind
	// Template is Go text/template text with a `secret "name"` function.
	Template string
	// DataVolumes are the volumes that hold data made with this secret's
	// value: the store keeps the password it was first started with
	// (PostgreSQL, MySQL, Portainer), keeps a role's password that other
	// clients may use, or holds values encrypted with the key (Kestra). A
	// secret with data volumes may be generated only while none of them
	// exists: a new value would lock the stack, or its other clients, out.
	DataVolumes []string
}

// File is a non-secret file the deployment ships beside its manifests.
type File struct {
	// Path is relative to the output directory, e.g. "proxy/Caddyfile".
	Path    string
	Content []byte
	// Mode is the permission bits (0644 or 0755).
	Mode uint32
}

// Route is one public host name served by the proxy.
type Route struct {
	Host    string
	Service string
	Port    int
	// URL is what a browser opens, e.g. "https://kestra.acme.example.com"
	// or, with a non-default HTTPS port, "https://kestra.acme.test:8443".
	URL string
}

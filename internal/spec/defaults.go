package spec

// Defaults that do not depend on the catalog. The catalog's image pins are
// passed in by the caller, so this file stays the one place where a spec
// default is decided.
const (
	DefaultTLSMode         = "acme"
	DefaultAppPort         = 8080
	DefaultAppHealth       = "/healthz"
	DefaultReplicas        = 1
	DefaultPostgresVersion = "17"
	DefaultStorage         = "20Gi"
	DefaultHTTPPort        = 80
	DefaultHTTPSPort       = 443
)

// ComponentNames lists the platform components in the order they are shown.
var ComponentNames = []string{"tracardi", "kestra", "postiz", "portainer"}

// Get returns the named component's settings, or nil when absent.
func (c *Components) Get(name string) *Component {
	switch name {
	case "tracardi":
		return c.Tracardi
	case "kestra":
		if c.Kestra == nil {
			return nil
		}
		return &Component{Enabled: c.Kestra.Enabled, Version: c.Kestra.Version}
	case "postiz":
		return c.Postiz
	case "portainer":
		return c.Portainer
	}
	return nil
}

func (c *Components) set(name string, v *Component) {
	switch name {
	case "tracardi":
		c.Tracardi = v
	case "kestra":
		k := KestraComponent{}
		if c.Kestra != nil {
			k = *c.Kestra
		}
		k.Enabled, k.Version = v.Enabled, v.Version
		c.Kestra = &k
	case "postiz":
		c.Postiz = v
	case "portainer":
		c.Portainer = v
	}
}

// KestraDockerTasks reports whether Kestra gets the Docker socket for its
// task runner (components.kestra.docker_tasks).
func (c *Components) KestraDockerTasks() bool {
	return c.Kestra != nil && c.Kestra.DockerTasks
}

// Enabled reports whether the named component is switched on.
func (c *Components) Enabled(name string) bool {
	comp := c.Get(name)
	return comp != nil && comp.Enabled
}

// WithDefaults returns a copy of the stack with every default filled in.
// pins maps a component name to the catalog's default version.
func (s *Stack) WithDefaults(pins map[string]string) *Stack {
	out := *s
	if out.TLS.Mode == "" {
		out.TLS.Mode = DefaultTLSMode
	}
	if s.App != nil {
		app := *s.App
		if app.Port == 0 {
			app.Port = DefaultAppPort
		}
		if app.Health == "" {
			app.Health = DefaultAppHealth
		}
		if app.Replicas == nil {
			app.Replicas = intPtr(DefaultReplicas)
		}
		out.App = &app
	}
	for _, name := range ComponentNames {
		c := &Component{}
		if cur := s.Components.Get(name); cur != nil {
			*c = *cur
		}
		if c.Version == "" {
			c.Version = pins[name]
		}
		out.Components.set(name, c)
	}
	if out.Phase1.HTTPPort == 0 {
		out.Phase1.HTTPPort = DefaultHTTPPort
	}
	if out.Phase1.HTTPSPort == 0 {
		out.Phase1.HTTPSPort = DefaultHTTPSPort
	}
	if out.Database.Version == "" {
		out.Database.Version = DefaultPostgresVersion
	}
	if out.Database.Storage == "" {
		out.Database.Storage = DefaultStorage
	}
	if s.Services != nil {
		out.Services = make(map[string]Service, len(s.Services))
		for name, svc := range s.Services {
			if svc.Replicas == nil {
				svc.Replicas = intPtr(DefaultReplicas)
			}
			out.Services[name] = svc
		}
	}
	return &out
}

func intPtr(i int) *int { return &i }

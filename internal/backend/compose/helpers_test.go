package compose_test

import (
	"testing"

	"github.com/aipairpro/orchestrator/internal/model"
)

func findService(t *testing.T, r rendered, name string) model.Service {
	t.Helper()
	for _, s := range r.res.Deployment.Services {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("service %s is not in the deployment", name)
	return model.Service{}
}

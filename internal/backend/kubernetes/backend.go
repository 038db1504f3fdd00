package kubernetes

import (
	"context"

	"github.com/aipairpro/orchestrator/internal/engine"
	"github.com/aipairpro/orchestrator/internal/model"
)

// Backend plugs Render into the engine's pipeline (engine.Backend), so
// `render --phase=2` writes the manifests the same way `render --phase=1`
// writes the compose file: the same spec, the same secret state, atomic
// writes of unchanged-or-new files. Secret values stay in memory
// (Last.Secrets) unless Options.IncludeSecrets.
type Backend struct {
	// Options are Render's options; Secrets defaults to the engine's.
	Options Options
	// Last is the most recent Render's full output (objects, warnings,
	// Pod Security decisions) for the caller to report.
	Last *Artifacts
}

var _ engine.Backend = (*Backend)(nil)

// Name returns "kubernetes".
func (*Backend) Name() string { return "kubernetes" }

// Render renders d with the backend's options and returns its files.
func (b *Backend) Render(ctx context.Context, d *model.Deployment, o engine.RenderOptions) (*engine.Artifacts, error) {
	opts := b.Options
	if opts.Secrets == nil && o.Secrets != nil {
		opts.Secrets = o.Secrets
	}
	arts, err := Render(ctx, d, opts)
	if err != nil {
		return nil, err
	}
	b.Last = arts
	return &engine.Artifacts{Files: arts.Files}, nil
}

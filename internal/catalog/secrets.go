package catalog

import "github.com/aipairpro/orchestrator/internal/model"

// dataSecret registers a generated secret that data in the given volumes
// is made with (model.Secret.DataVolumes): losing it must never lead to a
// new value while that data exists.
func (b *builder) dataSecret(name string, kind model.SecretKind, volumes ...string) string {
	b.secrets[name] = model.Secret{Name: name, Generate: kind, DataVolumes: volumes}
	return name
}

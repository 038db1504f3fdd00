package spec

import (
	"encoding/json"

	"github.com/invopop/jsonschema"
)

// SchemaID is the $id of the spec's JSON Schema.
const SchemaID = "https://github.com/aipairpro/orchestrator/schema/stack-v1.json"

// JSONSchema returns the spec's JSON Schema (draft 2020-12), generated from
// the same Go types the loader checks against, so the two cannot drift.
func JSONSchema() ([]byte, error) {
	r := &jsonschema.Reflector{
		RequiredFromJSONSchemaTags: true,
		DoNotReference:             false,
	}
	s := r.Reflect(&Stack{})
	s.ID = SchemaID
	s.Title = "orchestrator stack spec, version 1"
	if def, ok := s.Definitions["Stack"]; ok {
		if name, ok := def.Properties.Get("name"); ok {
			name.Pattern = dnsLabelRe().String()
		}
	}
	return json.MarshalIndent(s, "", "  ")
}

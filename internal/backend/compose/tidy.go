package compose

import (
	"bytes"
	"fmt"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// serviceKeyOrder is the order a person reads a service in: what runs,
// what it needs, how it is checked and bounded. compose-go emits struct
// order, which starts with deploy limits.
var serviceKeyOrder = []string{
	"image", "user", "entrypoint", "command", "restart", "depends_on",
	"environment", "env_file", "secrets", "configs", "ports", "volumes",
	"networks", "healthcheck", "deploy", "ulimits", "logging", "labels",
}

// tidy rewrites compose-go's YAML for people: service keys in reading
// order, memory in M/G instead of bytes, and networks as a list. The
// meaning is unchanged; tests load the result back with compose-go.
func tidy(in []byte) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(in, &doc); err != nil {
		return nil, err
	}
	root := doc.Content[0]
	if services := lookup(root, "services"); services != nil {
		for i := 1; i < len(services.Content); i += 2 {
			svc := services.Content[i]
			reorder(svc, serviceKeyOrder)
			if nets := lookup(svc, "networks"); nets != nil {
				listIfAllNull(nets)
			}
			if mem := lookup(lookup(lookup(lookup(svc, "deploy"), "resources"), "limits"), "memory"); mem != nil {
				mem.Value = humanBytes(mem.Value)
				mem.Style = 0
			}
		}
	}
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

func lookup(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func reorder(m *yaml.Node, order []string) {
	rank := make(map[string]int, len(order))
	for i, k := range order {
		rank[k] = i
	}
	type pair struct{ k, v *yaml.Node }
	pairs := make([]pair, 0, len(m.Content)/2)
	for i := 0; i+1 < len(m.Content); i += 2 {
		pairs = append(pairs, pair{m.Content[i], m.Content[i+1]})
	}
	pos := func(k string) int {
		if r, ok := rank[k]; ok {
			return r
		}
		return len(order) // unknown keys keep their order, at the end
	}
	// Insertion sort: stable and the lists are short.
	for i := 1; i < len(pairs); i++ {
		for j := i; j > 0 && pos(pairs[j].k.Value) < pos(pairs[j-1].k.Value); j-- {
			pairs[j], pairs[j-1] = pairs[j-1], pairs[j]
		}
	}
	m.Content = m.Content[:0]
	for _, p := range pairs {
		m.Content = append(m.Content, p.k, p.v)
	}
}

func listIfAllNull(m *yaml.Node) {
	if m.Kind != yaml.MappingNode {
		return
	}
	var items []*yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		v := m.Content[i+1]
		if !(v.Kind == yaml.ScalarNode && v.Tag == "!!null") {
			return
		}
		items = append(items, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: m.Content[i].Value})
	}
	m.Kind, m.Tag, m.Content, m.Style = yaml.SequenceNode, "!!seq", items, yaml.FlowStyle
}

// humanBytes writes a byte count the way compose reads it (binary units).
func humanBytes(s string) string {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return s
	}
	const mi, gi = 1 << 20, 1 << 30
	switch {
	case n%gi == 0:
		return fmt.Sprintf("%dG", n/gi)
	case n%mi == 0:
		return fmt.Sprintf("%dM", n/mi)
	}
	return s
}

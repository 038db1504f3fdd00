package spec

import (
	"bytes"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/aipairpro/orchestrator/internal/lazyre"

	"go.yaml.in/yaml/v3"

	"github.com/aipairpro/orchestrator/internal/diag"
)

// source remembers where each field of a loaded spec came from, so later
// checks (validation, the catalog's override check) can point at it.
type source struct {
	filename string
	keys     map[string]*yaml.Node
	values   map[string]*yaml.Node
	// broken marks paths that failed the structural checks; semantic checks
	// skip them so one mistake is reported once.
	broken map[string]bool
}

// Pos returns the position of the value at path (e.g. "services.worker.image"),
// falling back to its key and then to the nearest parent that has one. It
// returns nil when the stack was not loaded from a file.
func (s *Stack) Pos(path string) *diag.Pos {
	return s.pos(path, false)
}

// KeyPos is Pos, but prefers the key's position over the value's: the right
// place for "unknown name" problems.
func (s *Stack) KeyPos(path string) *diag.Pos {
	return s.pos(path, true)
}

func (s *Stack) pos(path string, preferKey bool) *diag.Pos {
	if s.src == nil {
		return nil
	}
	for p := path; ; {
		first, second := s.src.values[p], s.src.keys[p]
		if preferKey {
			first, second = second, first
		}
		for _, n := range []*yaml.Node{first, second} {
			if n != nil {
				return &diag.Pos{Filename: s.src.filename, Line: n.Line, Column: n.Column}
			}
		}
		if p == "" {
			return &diag.Pos{Filename: s.src.filename}
		}
		p = parentPath(p)
	}
}

// width is how many columns the value at path spans, when it is a plain
// one-line scalar: what a diagnostic underlines.
func (s *Stack) width(path string) int {
	if s.src == nil {
		return 0
	}
	n := s.src.values[path]
	if n == nil || n.Kind != yaml.ScalarNode || strings.Contains(n.Value, "\n") {
		return 0
	}
	switch n.Style {
	case 0:
		return len(n.Value)
	case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
		return len(n.Value) + 2
	}
	return 0
}

func parentPath(p string) string {
	if i := strings.LastIndexAny(p, ".["); i >= 0 {
		return p[:i]
	}
	return ""
}

// LoadFile reads and loads the spec at path.
func LoadFile(path string) (*Stack, diag.Sources, diag.Diagnostics) {
	data, err := os.ReadFile(path)
	if err != nil {
		var ds diag.Diagnostics
		ds.Errorf(nil, "", "pass the spec with -f FILE, or run `orchestrator init` to create one", "cannot read spec: %v", err)
		return nil, nil, ds
	}
	st, ds := Load(path, data)
	return st, diag.Sources{path: data}, ds
}

// Load parses a spec. It checks every key and type against the spec's
// types and reports all problems with their positions; on success it also
// runs the semantic checks of Validate. The returned stack is nil when
// there are errors.
func Load(filename string, data []byte) (*Stack, diag.Diagnostics) {
	var ds diag.Diagnostics
	var doc yaml.Node
	if err := safeUnmarshal(data, &doc); err != nil {
		ds = append(ds, yamlError(filename, err))
		return nil, ds
	}
	if doc.Kind == 0 || len(doc.Content) == 0 || doc.Content[0].Kind == yaml.ScalarNode && doc.Content[0].Tag == "!!null" {
		ds.Errorf(&diag.Pos{Filename: filename, Line: 1, Column: 1}, "", "start from `orchestrator init`, which writes a commented stack.yaml", "the spec is empty")
		return nil, ds
	}
	if len(data) > 0 && bytes.Count(data, []byte("\n---")) > 0 && hasSecondDocument(data) {
		ds.Errorf(&diag.Pos{Filename: filename, Line: 1, Column: 1}, "", "keep one stack per file", "the spec holds more than one YAML document")
	}
	src := &source{filename: filename, keys: map[string]*yaml.Node{}, values: map[string]*yaml.Node{}, broken: map[string]bool{}}
	w := &walker{src: src}
	root := doc.Content[0]
	// The walker reports structural problems and cuts the offending nodes
	// out of the tree, so the rest still decodes and gets its semantic
	// checks: one run reports every problem.
	w.walk(root, reflect.TypeOf(Stack{}), "")
	ds = append(ds, w.diags...)
	if root.Kind != yaml.MappingNode {
		return nil, ds
	}
	st := &Stack{}
	if err := root.Decode(st); err != nil {
		// The walker checks every type the decoder needs, so this is a
		// value the walker let through (an integer overflow, say).
		ds = append(ds, yamlError(filename, err))
		ds.Sort()
		return nil, ds
	}
	st.src = src
	ds = append(ds, Validate(st)...)
	ds.Sort()
	if ds.HasErrors() {
		return nil, ds
	}
	return st, ds
}

func hasSecondDocument(data []byte) bool {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	n := 0
	for {
		var v yaml.Node
		if err := dec.Decode(&v); err != nil {
			return n > 1
		}
		n++
	}
}

func safeUnmarshal(data []byte, doc *yaml.Node) (err error) {
	// The YAML library is third-party code; a panic on hostile input must
	// become an error here, not a crash of the CLI.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: cannot parse: %v", r)
		}
	}()
	return yaml.Unmarshal(data, doc)
}

var yamlLineRe = lazyre.New(`^yaml: (?:line (\d+): )?(.*)$`)

func yamlError(filename string, err error) diag.Diagnostic {
	msg := err.Error()
	pos := &diag.Pos{Filename: filename, Line: 1, Column: 1}
	if m := yamlLineRe().FindStringSubmatch(msg); m != nil {
		msg = m[2]
		if m[1] != "" {
			pos.Line, _ = strconv.Atoi(m[1])
			// The YAML library numbers lines from 0 for parser errors and
			// from 1 for scanner errors; its parser's messages are these.
			if strings.HasPrefix(msg, "did not find expected") || strings.HasPrefix(msg, "block sequence entries are not allowed") {
				pos.Line++
			}
		}
	}
	return diag.Diagnostic{Severity: diag.Error, Subject: pos, Summary: "invalid YAML: " + msg, Hint: "check indentation and quoting on this line or the one before it"}
}

// walker checks a YAML tree against a Go type, key by key, recording each
// node's position by field path.
type walker struct {
	src   *source
	diags diag.Diagnostics
}

func (w *walker) at(n *yaml.Node) *diag.Pos {
	return &diag.Pos{Filename: w.src.filename, Line: n.Line, Column: n.Column}
}

// errorf reports a problem with the value at path and replaces the value
// by null, so decoding goes on without it.
func (w *walker) errorf(n *yaml.Node, path, hint, format string, args ...any) {
	d := diag.Diagnostic{Severity: diag.Error, Subject: w.at(n), Path: path, Hint: hint, Summary: fmt.Sprintf(format, args...)}
	if n.Kind == yaml.ScalarNode && n.Style == 0 && !strings.Contains(n.Value, "\n") {
		d.Width = len(n.Value)
	}
	w.diags = append(w.diags, d)
	w.src.broken[path] = true
	*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "nothing (null)"
		case "!!bool":
			return "a boolean"
		case "!!int":
			return "an integer"
		case "!!float":
			return "a number"
		}
		return fmt.Sprintf("the string %q", n.Value)
	}
	return "an unsupported YAML node"
}

func (w *walker) walk(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	w.src.values[path] = n
	if t.Kind() == reflect.Pointer {
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			return
		}
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			w.errorf(n, path, "write it as `key: value` lines indented under "+quotePath(path), "expected a mapping, got %s", kindName(n))
			return
		}
		fields := structFields(t)
		w.mapping(n, path, func(key, val *yaml.Node, sub string) bool {
			f, ok := fields.byName[key.Value]
			if !ok {
				hint := "remove it, or check its spelling and indentation"
				if s := suggest(key.Value, fields.names); s != "" {
					hint = fmt.Sprintf("did you mean %q?", s)
				}
				if key.Value == "<<" {
					hint = "YAML merge keys are not supported here; write the fields out"
				}
				d := diag.Diagnostic{Severity: diag.Error, Subject: w.at(key), Path: path, Width: len(key.Value), Hint: hint,
					Summary: fmt.Sprintf("unknown key %q", key.Value),
					Detail:  "expected one of: " + strings.Join(fields.names, ", ")}
				w.diags = append(w.diags, d)
				w.src.broken[sub] = true
				return false
			}
			w.walk(val, f, sub)
			return true
		})
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			w.errorf(n, path, "write it as `name: value` lines indented under "+quotePath(path), "expected a mapping, got %s", kindName(n))
			return
		}
		w.mapping(n, path, func(key, val *yaml.Node, sub string) bool { w.walk(val, t.Elem(), sub); return true })
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			hint := "write it as a list, e.g. [a, b]"
			if n.Kind == yaml.ScalarNode && t.Elem().Kind() == reflect.String && n.Tag != "!!null" {
				hint = fmt.Sprintf("write it as a list: [%s]", strings.Join(strings.Fields(n.Value), ", "))
			}
			w.errorf(n, path, hint, "expected a list, got %s", kindName(n))
			return
		}
		for i, item := range n.Content {
			w.walk(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
			w.errorf(n, path, "", "expected a string, got %s", kindName(n))
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
			w.errorf(n, path, "use true or false", "expected a boolean, got %s", kindName(n))
		}
	case reflect.Int:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
			w.errorf(n, path, "", "expected an integer, got %s", kindName(n))
		} else if _, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 32); err != nil {
			w.errorf(n, path, "", "integer %s is out of range", n.Value)
		}
	case reflect.Float64:
		if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") {
			w.errorf(n, path, "", "expected a number, got %s", kindName(n))
		}
	default:
		w.errorf(n, path, "", "unsupported field type %s", t)
	}
}

// mapping visits each key of a mapping node, reporting non-string and
// duplicate keys. Pairs that are reported, or that visit rejects, are cut
// from the node.
func (w *walker) mapping(n *yaml.Node, path string, visit func(key, val *yaml.Node, sub string) bool) {
	seen := map[string]*yaml.Node{}
	kept := n.Content[:0:0]
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		if key.Kind != yaml.ScalarNode || key.Tag == "!!null" {
			w.errorf(key, path, "", "expected a name as key, got %s", kindName(key))
			continue
		}
		sub := key.Value
		if path != "" {
			sub = path + "." + key.Value
		}
		if prev, dup := seen[key.Value]; dup {
			w.diags = append(w.diags, diag.Diagnostic{Severity: diag.Error, Subject: w.at(key), Path: path, Width: len(key.Value),
				Hint: fmt.Sprintf("remove one; the first is on line %d", prev.Line), Summary: fmt.Sprintf("duplicate key %q", key.Value)})
			continue
		}
		seen[key.Value] = key
		w.src.keys[sub] = key
		if visit(key, val, sub) {
			kept = append(kept, key, val)
		}
	}
	n.Content = kept
}

func quotePath(path string) string {
	if path == "" {
		return "the top level"
	}
	return path
}

type fieldTable struct {
	byName map[string]reflect.Type
	names  []string
}

var fieldCache sync.Map // reflect.Type -> *fieldTable

func structFields(t reflect.Type) *fieldTable {
	if v, ok := fieldCache.Load(t); ok {
		return v.(*fieldTable)
	}
	ft := &fieldTable{byName: map[string]reflect.Type{}}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		ft.byName[name] = f.Type
		ft.names = append(ft.names, name)
	}
	sort.Strings(ft.names)
	fieldCache.Store(t, ft)
	return ft
}

// suggest returns the candidate closest to s when it is close enough to be
// a likely typo (about one edit in three characters), else "".
func suggest(s string, candidates []string) string {
	best, bestD := "", 1<<30
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(s), strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	if bestD <= max(1, len(s)/3) {
		return best
	}
	return ""
}

// editDistance is the optimal-string-alignment distance: insertions,
// deletions, substitutions and swaps of neighbours each cost one, so
// "prot" is one edit from "port".
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// Suggest is the did-you-mean helper, shared with the catalog's checks.
func Suggest(s string, candidates []string) string { return suggest(s, candidates) }

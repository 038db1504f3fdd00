package spec

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

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

// MaxSpecBytes is the largest spec the loader reads: 512 KiB holds some
// 3,000 services (the 500 of the benchmarks take 75 KB), and parsing the
// most nodes it can hold takes about 0.2 s. Anything larger is refused
// before it is parsed, so an endless input (-f /dev/zero) costs one read
// of the limit.
const MaxSpecBytes = 512 << 10

// MaxSpecNodes bounds the YAML values the loader walks and decodes, aliases
// expanded; a spec of MaxSpecBytes written out holds about 80,000. Each
// alias counts as the whole subtree it repeats, so ten anchors of ten
// aliases each (a billion laughs) are refused from their size, before any
// expansion.
const MaxSpecNodes = 125_000

// LoadFile reads and loads the spec at path.
func LoadFile(path string) (*Stack, diag.Sources, diag.Diagnostics) {
	return LoadFileContext(context.Background(), path)
}

// LoadFileContext is LoadFile that returns as soon as ctx is done, even
// while the read blocks (a FIFO or pipe whose writer sends nothing) or the
// spec is being parsed. The abandoned work ends with the process; an
// interrupted read ends at once, since the file is closed.
func LoadFileContext(ctx context.Context, path string) (*Stack, diag.Sources, diag.Diagnostics) {
	type loaded struct {
		st  *Stack
		src diag.Sources
		ds  diag.Diagnostics
	}
	done := make(chan loaded, 1)
	go func() {
		data, err := ReadFile(ctx, path)
		if err != nil {
			var ds diag.Diagnostics
			ds.Errorf(nil, "", "pass the spec with -f FILE, or run `orchestrator init` to create one", "cannot read spec: %v", err)
			done <- loaded{ds: ds}
			return
		}
		st, ds := Load(path, data)
		done <- loaded{st, diag.Sources{path: data}, ds}
	}()
	select {
	case l := <-done:
		return l.st, l.src, l.ds
	case <-ctx.Done():
		var ds diag.Diagnostics
		ds.Errorf(nil, "", "", "cannot read spec %s: %v", path, ctx.Err())
		return nil, nil, ds
	}
}

// ReadFile reads at most MaxSpecBytes+1 bytes of path: enough for Load or
// CheckYAML to tell that a longer input is too long. It returns ctx's error
// as soon as ctx is done, even while the open or a read blocks (a FIFO
// without a writer, or whose writer sends nothing); a blocked read is
// ended by closing the file, a blocked open ends with the process.
func ReadFile(ctx context.Context, path string) ([]byte, error) {
	type read struct {
		data []byte
		err  error
	}
	done := make(chan read, 1)
	go func() {
		f, err := os.Open(path)
		if err != nil {
			done <- read{nil, err}
			return
		}
		defer f.Close()
		stop := context.AfterFunc(ctx, func() { _ = f.Close() })
		defer stop()
		data, err := io.ReadAll(io.LimitReader(f, MaxSpecBytes+1))
		done <- read{data, err}
	}()
	select {
	case r := <-done:
		return r.data, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// CheckYAML reports what makes data unsafe to decode as YAML, with its
// position: more than MaxSpecBytes, a character YAML does not allow, a
// syntax error, or more than MaxSpecNodes values once aliases are
// expanded. Load applies the same bounds; the CLI's config file goes
// through CheckYAML before viper decodes it.
func CheckYAML(filename string, data []byte) *diag.Diagnostic {
	_, d := parseBounded(filename, data, "file")
	return d
}

// parseBounded parses data into a node tree within the bounds CheckYAML
// describes, or says why it cannot; noun names the file in messages.
func parseBounded(filename string, data []byte, noun string) (*yaml.Node, *diag.Diagnostic) {
	if len(data) > MaxSpecBytes {
		return nil, &diag.Diagnostic{Severity: diag.Error, Subject: &diag.Pos{Filename: filename},
			Summary: fmt.Sprintf("the %s is larger than %d KiB (%d bytes), the most a %s may be", noun, MaxSpecBytes>>10, MaxSpecBytes, noun),
			Hint:    "is this the right file? A stack spec is a few kilobytes"}
	}
	if d := unreadable(filename, data); d != nil {
		return nil, d
	}
	var doc yaml.Node
	if err := safeUnmarshal(data, &doc); err != nil {
		d := yamlError(filename, err)
		return nil, &d
	}
	// Bounded before anything walks or decodes the tree, both of which
	// expand aliases.
	if d := checkSize(filename, &doc, noun); d != nil {
		return nil, d
	}
	return &doc, nil
}

// Load parses a spec. It checks every key and type against the spec's
// types and reports all problems with their positions; on success it also
// runs the semantic checks of Validate. The returned stack is nil when
// there are errors.
func Load(filename string, data []byte) (*Stack, diag.Diagnostics) {
	var ds diag.Diagnostics
	doc, d := parseBounded(filename, data, "spec")
	if d != nil {
		return nil, append(ds, *d)
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

// unreadable reports the first character YAML does not allow in a stream
// (a control character, U+FFFE or U+FFFF, bytes that are not UTF-8) at its
// position. The YAML library reports it too, but without a position.
func unreadable(filename string, data []byte) *diag.Diagnostic {
	line, col := 1, 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		var what string
		switch {
		case r == utf8.RuneError && size == 1:
			what = fmt.Sprintf("byte 0x%02x is not UTF-8", data[i])
		case r == '\t' || r == '\n' || r == '\r' || r == 0x85:
		case r < 0x20 || r == 0x7f || r >= 0x80 && r <= 0x9f || r == 0xfffe || r == 0xffff:
			what = fmt.Sprintf("control character %U is not allowed", r)
		}
		if what != "" {
			return &diag.Diagnostic{Severity: diag.Error, Subject: &diag.Pos{Filename: filename, Line: line, Column: col}, Width: 1,
				Summary: "invalid YAML: " + what,
				Hint:    `remove it; inside a double-quoted string write it as an escape such as \x1b`}
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
		i += size
	}
	return nil
}

// checkSize counts the values of the document in document order, each
// alias as the size of the subtree it repeats (sizes are computed once per
// node, so counting costs the size of the file, not of the expansion), and
// refuses the document past MaxSpecNodes, or with an alias inside its own
// anchor, at the node where that happens.
func checkSize(filename string, doc *yaml.Node, noun string) *diag.Diagnostic {
	sizes := map[*yaml.Node]int{}
	var cycle *yaml.Node
	// size is the number of values n stands for, saturated above
	// MaxSpecNodes; -1 marks a node being sized (an alias to it is a
	// cycle).
	var size func(n *yaml.Node) int
	size = func(n *yaml.Node) int {
		if n.Kind == yaml.AliasNode {
			if n.Alias == nil {
				return 1
			}
			if sizes[n.Alias] == -1 {
				if cycle == nil {
					cycle = n
				}
				return MaxSpecNodes + 1
			}
			return size(n.Alias)
		}
		if s, ok := sizes[n]; ok && s >= 0 {
			return s
		}
		sizes[n] = -1
		s := 1
		for _, c := range n.Content {
			s = min(s+size(c), MaxSpecNodes+1)
		}
		sizes[n] = s
		return s
	}
	at := func(n *yaml.Node) *diag.Pos { return &diag.Pos{Filename: filename, Line: n.Line, Column: n.Column} }
	total := 0
	var over *diag.Diagnostic
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if over != nil {
			return
		}
		if n.Kind == yaml.AliasNode {
			total += size(n)
			switch {
			case cycle != nil:
				over = &diag.Diagnostic{Severity: diag.Error, Subject: at(cycle), Width: len(cycle.Value) + 1,
					Summary: fmt.Sprintf("alias *%s refers to the node that contains it", cycle.Value),
					Hint:    "an alias may only repeat a value that is complete where the alias stands"}
			case total > MaxSpecNodes:
				over = &diag.Diagnostic{Severity: diag.Error, Subject: at(n), Width: len(n.Value) + 1,
					Summary: fmt.Sprintf("aliases expand the %s beyond %d nodes", noun, MaxSpecNodes),
					Hint:    "write the repeated values out, or repeat smaller pieces"}
			}
			return
		}
		total++
		if total > MaxSpecNodes {
			over = &diag.Diagnostic{Severity: diag.Error, Subject: at(n),
				Summary: fmt.Sprintf("the %s has more than %d nodes", noun, MaxSpecNodes),
				Hint:    "is this the right file? A stack spec holds a few thousand values"}
			return
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(doc)
	return over
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
		} else if strings.ContainsRune(n.Value, 0) {
			// Environment, arguments, labels and paths reach the engine
			// and the kernel as C strings, which end at the first NUL: the
			// engine finds out only at container create.
			w.errorf(n, path, "remove it", "%s contains a NUL character (\\0), which no container can take", valueNoun(path))
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

// valueNoun names what the string at path is, for messages.
func valueNoun(path string) string {
	switch {
	case strings.Contains(path, ".env."):
		return "env value"
	case strings.Contains(path, ".command["), strings.Contains(path, ".test["):
		return "command argument"
	}
	return "value"
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

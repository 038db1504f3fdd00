package compose

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/aipairpro/orchestrator/internal/lazyre"

	"github.com/compose-spec/compose-go/v2/types"
)

// marshal writes the project as compose YAML.
//
// The project goes through compose-go's own JSON form (Project.MarshalJSON,
// what `docker compose config --format json` prints), so every field is
// serialised by compose-go's marshalers. The YAML is then written here, for
// two reasons: speed (the YAML libraries' reflection and emitters cost tens
// of milliseconds per render, hundreds for 500 services) and people (keys in
// reading order, memory in M/G, network lists on one line). Tests load the
// result back with compose-go and the docker compose CLI.
func marshal(p *types.Project) ([]byte, error) {
	raw, err := p.MarshalJSON()
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	prune(doc, "")
	if services, ok := doc["services"].(map[string]any); ok {
		for _, s := range services {
			tidyService(s.(map[string]any))
		}
	}
	w := &yamlWriter{}
	w.mapping(doc, 0, "")
	return w.buf.Bytes(), nil
}

var topKeyOrder = []string{"name", "services", "networks", "volumes", "secrets", "configs"}

// serviceKeyOrder is the order a person reads a service in: what runs,
// what it needs, how it is checked and bounded.
var serviceKeyOrder = []string{
	"image", "user", "entrypoint", "command", "restart", "depends_on",
	"environment", "env_file", "secrets", "configs", "ports", "volumes",
	"networks", "healthcheck", "deploy", "ulimits", "logging", "labels",
}

func tidyService(s map[string]any) {
	// A network map whose values are all empty is a plain list.
	if nets, ok := s["networks"].(map[string]any); ok {
		names := make([]any, 0, len(nets))
		for name, v := range nets {
			if v != nil {
				return
			}
			names = append(names, name)
		}
		sort.Slice(names, func(i, j int) bool { return names[i].(string) < names[j].(string) })
		s["networks"] = flowList(names)
	}
	if limits, ok := dig(s, "deploy", "resources", "limits").(map[string]any); ok {
		if m, ok := limits["memory"].(string); ok {
			limits["memory"] = humanBytes(m)
		}
	}
}

// prune drops what the JSON form spells out but the YAML form omits: null
// fields and empty objects. Nulls in an environment map stay (they mean
// "take the value from the environment"), and so do the empty entries of
// the top-level sections (a volume with no options is still a volume).
func prune(m map[string]any, path string) {
	for k, v := range m {
		sub := k
		if path != "" {
			sub = path + "." + k
		}
		switch x := v.(type) {
		case nil:
			if !strings.HasSuffix(path, ".environment") && !isSectionEntry(path) {
				delete(m, k)
			}
		case map[string]any:
			prune(x, sub)
			if len(x) == 0 && !isSectionEntry(path) {
				delete(m, k)
			}
		case []any:
			for _, item := range x {
				if mm, ok := item.(map[string]any); ok {
					prune(mm, sub+"[]")
				}
			}
		}
	}
}

// isSectionEntry reports whether path is a top-level section whose entries
// may be empty: volumes, networks, secrets, configs.
func isSectionEntry(path string) bool {
	switch path {
	case "volumes", "networks", "secrets", "configs":
		return true
	}
	return strings.HasPrefix(path, "services.") && strings.HasSuffix(path, ".networks")
}

// flowList is a list written on one line: [a, b].
type flowList []any

func dig(m map[string]any, keys ...string) any {
	var cur any = m
	for _, k := range keys {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[k]
	}
	return cur
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

// yamlWriter writes the JSON data model (maps, lists, strings, numbers,
// booleans, null) as block YAML, quoting every string that a YAML 1.1 or
// 1.2 reader could take for anything but that string.
type yamlWriter struct{ buf bytes.Buffer }

func (w *yamlWriter) indent(n int) {
	for i := 0; i < n; i++ {
		w.buf.WriteByte(' ')
	}
}

func orderedKeys(m map[string]any, order []string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	rank := func(k string) int {
		for i, o := range order {
			if o == k {
				return i
			}
		}
		return len(order)
	}
	sort.Slice(keys, func(i, j int) bool {
		ri, rj := rank(keys[i]), rank(keys[j])
		if ri != rj {
			return ri < rj
		}
		return keys[i] < keys[j]
	})
	return keys
}

// keyOrder picks the key order for the mapping at path: the top level and
// services have a reading order, everything else is alphabetical.
func keyOrder(path string) []string {
	switch {
	case path == "":
		return topKeyOrder
	case strings.HasPrefix(path, "services.") && strings.Count(path, ".") == 1:
		return serviceKeyOrder
	}
	return nestedKeyOrder
}

// nestedKeyOrder puts the keys that say what an entry is first (a volume's
// type, source and target; a healthcheck's test), the rest alphabetical.
var nestedKeyOrder = []string{"type", "source", "target", "test", "condition"}

// mapping writes the keys of m at the given indent, each on its own line.
// The first key continues the current line when that line is a list's "- ".
func (w *yamlWriter) mapping(m map[string]any, ind int, path string) {
	for i, k := range orderedKeys(m, keyOrder(path)) {
		if i > 0 || w.buf.Len() == 0 || w.buf.Bytes()[w.buf.Len()-1] == '\n' {
			w.indent(ind)
		}
		w.scalar(k)
		w.buf.WriteByte(':')
		sub := k
		if path != "" {
			sub = path + "." + k
		}
		w.value(m[k], ind, sub)
	}
}

// value writes v after "key:" (or "-") on the current line.
func (w *yamlWriter) value(v any, ind int, path string) {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 0 {
			w.buf.WriteString(" {}\n")
			return
		}
		w.buf.WriteByte('\n')
		w.mapping(x, ind+2, path)
	case flowList:
		w.buf.WriteString(" [")
		for i, item := range x {
			if i > 0 {
				w.buf.WriteString(", ")
			}
			w.scalar(item.(string))
		}
		w.buf.WriteString("]\n")
	case []any:
		if len(x) == 0 {
			w.buf.WriteString(" []\n")
			return
		}
		w.buf.WriteByte('\n')
		for _, item := range x {
			w.indent(ind + 2)
			w.buf.WriteByte('-')
			if m, ok := item.(map[string]any); ok && len(m) > 0 {
				w.buf.WriteByte(' ')
				w.mapping(m, ind+4, path+"[]")
				continue
			}
			w.value(item, ind+2, path+"[]")
		}
	case string:
		if literalBlock(x) {
			// A file's content (a config's `content:`) reads as the file.
			w.buf.WriteString(" |\n")
			for _, line := range strings.SplitAfter(strings.TrimSuffix(x, "\n"), "\n") {
				if line != "\n" {
					w.indent(ind + 2)
				}
				w.buf.WriteString(line)
			}
			w.buf.WriteByte('\n')
			return
		}
		w.buf.WriteByte(' ')
		w.scalar(x)
		w.buf.WriteByte('\n')
	default:
		w.buf.WriteByte(' ')
		w.atom(v)
		w.buf.WriteByte('\n')
	}
}

// literalBlock reports whether s can be written as a literal block scalar
// ("|", clip chomping) and read back unchanged: several lines ending in
// exactly one newline, the first that is not empty not indented (a reader
// takes the block's indentation from it), no line of blanks only
// (its indentation would be ambiguous), and only printable characters and
// tabs (anything else needs the escapes of the double-quoted style).
func literalBlock(s string) bool {
	if !strings.HasSuffix(s, "\n") || strings.HasSuffix(s, "\n\n") || strings.Count(s, "\n") < 2 {
		return false
	}
	if first := strings.TrimLeft(s, "\n"); first[0] == ' ' || first[0] == '\t' {
		return false
	}
	for _, line := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		if line != "" && strings.TrimLeft(line, " \t") == "" {
			return false
		}
	}
	for _, r := range s {
		switch {
		case r == '\n' || r == '\t':
		case r < 0x20 || r == 0x7f || r >= 0x80 && r <= 0x9f:
			return false
		case r == 0xfeff || r == 0x2028 || r == 0x2029 || r == 0xfffe || r == 0xffff || r == utf8.RuneError:
			return false
		}
	}
	return true
}

func (w *yamlWriter) atom(v any) {
	switch x := v.(type) {
	case nil:
		w.buf.WriteString("null")
	case bool:
		w.buf.WriteString(strconv.FormatBool(x))
	case json.Number:
		w.buf.WriteString(x.String())
	case string:
		w.scalar(x)
	default:
		panic(fmt.Sprintf("compose yaml: unexpected %T", v))
	}
}

var (
	// plainChars are the characters a plain scalar may hold here; anything
	// else is double-quoted.
	plainChars = lazyre.New(`^[A-Za-z0-9 _./:+=@~()$;&|'>-]+$`)
	// numberRe matches what YAML 1.1 or 1.2 could read as a number.
	numberRe = lazyre.New(`^[-+]?(\.?[0-9][0-9_]*(\.[0-9_]*)?([eE][-+]?[0-9]+)?|0[xob][0-9a-fA-F_]+|\.(inf|Inf|INF|nan|NaN|NAN))$`)
	// Words YAML 1.1 or 1.2 reads as booleans or null.
	specialWords = map[string]bool{
		"y": true, "yes": true, "n": true, "no": true, "true": true, "false": true,
		"on": true, "off": true, "null": true,
	}
)

// numberLike reports whether a YAML reader could take the plain scalar s
// for a number: the YAML 1.1 and 1.2 forms, and what go-yaml (v3, and v4,
// which compose-go reads with) takes besides. For a scalar that starts
// with a sign, a digit or a dot, go-yaml drops every '_' and then tries Go's
// own number syntax, so "-_0x10" is -16, "1E_00" is 1 and "-_1" is -1.
// Out-of-range numbers count: they fail the load instead of reading as
// strings.
func numberLike(s string) bool {
	if numberRe().MatchString(s) {
		return true
	}
	if s == "" || !strings.ContainsAny(s[:1], "+-.0123456789") {
		return false
	}
	plain := strings.ReplaceAll(s, "_", "")
	parsed := func(err error) bool { return err == nil || errors.Is(err, strconv.ErrRange) }
	if _, err := strconv.ParseInt(plain, 0, 64); parsed(err) {
		return true
	}
	if _, err := strconv.ParseUint(plain, 0, 64); parsed(err) {
		return true
	}
	_, err := strconv.ParseFloat(plain, 64)
	return parsed(err)
}

// isPlain reports whether s reads back as the same string when written
// without quotes, under YAML 1.1 and 1.2 alike.
func isPlain(s string) bool {
	if !plainChars().MatchString(s) || specialWords[strings.ToLower(s)] || numberLike(s) {
		return false
	}
	if strings.Contains(s, ": ") || strings.Contains(s, " #") || strings.HasSuffix(s, ":") || strings.HasSuffix(s, " ") {
		return false
	}
	switch c := s[0]; {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_', c == '/', c == '$':
		return true
	case c == '.':
		return strings.HasPrefix(s, "./") || strings.HasPrefix(s, "../")
	case c == '-':
		// -H, --config; not "-", "- x", or "-1:20" (a YAML 1.1 number).
		if len(s) < 2 || s[1] == ' ' || s[1] >= '0' && s[1] <= '9' {
			return false
		}
		return s[1] != '-' || len(s) > 2
	case c >= '0' && c <= '9':
		// 10s, 512M, 2m0s; but not times (1:20) or dates (2026-01-01).
		return !strings.ContainsAny(s, ":-") && strings.IndexFunc(s, func(r rune) bool { return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' }) > 0
	}
	return false
}

// scalar writes a string, plain when that is unambiguous, else as a JSON
// string (a valid YAML double-quoted scalar).
func (w *yamlWriter) scalar(s string) {
	if isPlain(s) {
		w.buf.WriteString(s)
		return
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // strings always encode
	// JSON leaves DEL, the C1 controls, U+0085 (which YAML folds to a
	// space), U+FFFE and U+FFFF as they are; YAML allows none of them
	// in a stream and needs them escaped. The byte order mark is escaped
	// too: readers may drop it.
	for _, r := range string(bytes.TrimSuffix(b.Bytes(), []byte("\n"))) {
		if r == 0x7f || r >= 0x80 && r <= 0x9f || r == 0xfeff || r == 0xfffe || r == 0xffff {
			fmt.Fprintf(&w.buf, "\\u%04x", r)
			continue
		}
		w.buf.WriteRune(r)
	}
}

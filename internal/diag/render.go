package diag

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Sources maps a filename to its content, for printing source snippets.
type Sources map[string][]byte

// WriteText prints the diagnostics for a person, one block each:
//
//	stack.yaml:12:5: error: unknown key "enabeld" (components.tracardi)
//	   12 |     enabeld: true
//	      |     ^^^^^^^
//	      = expected one of: enabled, version
//	      = hint: did you mean "enabled"?
func (ds Diagnostics) WriteText(w io.Writer, src Sources) error {
	var b strings.Builder
	for _, d := range ds {
		writeOne(&b, d, src)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeOne(b *strings.Builder, d Diagnostic, src Sources) {
	if d.Subject != nil {
		b.WriteString(Escape(d.Subject.String()))
		b.WriteString(": ")
	}
	b.WriteString(d.Severity.String())
	b.WriteString(": ")
	b.WriteString(Escape(d.Summary))
	if d.Path != "" {
		fmt.Fprintf(b, " (%s)", Escape(d.Path))
	}
	b.WriteByte('\n')
	gutter := "     "
	if d.Subject != nil && d.Subject.Line > 0 {
		if line, ok := sourceLine(src[d.Subject.Filename], d.Subject.Line); ok {
			num := fmt.Sprintf("%d", d.Subject.Line)
			if len(num) < 4 {
				num = strings.Repeat(" ", 4-len(num)) + num
			}
			gutter = strings.Repeat(" ", len(num)+1)
			text, marks := snippet(line, d.Subject.Column-1, d.Width)
			fmt.Fprintf(b, "%s | %s\n", num, text)
			fmt.Fprintf(b, "%s| %s\n", gutter, marks)
		}
	}
	if d.Detail != "" {
		fmt.Fprintf(b, "%s= %s\n", gutter, Escape(d.Detail))
	}
	if d.Hint != "" {
		fmt.Fprintf(b, "%s= hint: %s\n", gutter, Escape(d.Hint))
	}
}

// snippetContext is how many columns of a long line a snippet shows on
// each side of its subject.
const snippetContext = 60

// snippet returns the source line as printed, escaped and, when long, cut
// to snippetContext columns around its subject, and the caret line under
// it: col characters in, underlining width bytes of the line from there
// (at least one column), each character as wide as Escape writes it and
// tabs kept so the carets line up under tab-indented text.
func snippet(line string, col, width int) (text, marks string) {
	// One entry per character: its bytes, how it is shown, its columns.
	var raw, shown []string
	var cols []int
	for i := 0; i < len(line); {
		_, size := utf8.DecodeRuneInString(line[i:])
		raw = append(raw, line[i:i+size])
		e := Escape(line[i : i+size])
		shown = append(shown, e)
		if e == raw[len(raw)-1] {
			cols = append(cols, 1)
		} else {
			cols = append(cols, len(e))
		}
		i += size
	}
	col = min(max(col, 0), len(raw))
	end := col
	for n := 0; end < len(raw) && n < width; end++ {
		n += len(raw[end])
	}
	first, n := col, 0
	for first > 0 && n+cols[first-1] <= snippetContext {
		first--
		n += cols[first]
	}
	last, n := end, 0
	for last < len(raw) && n+cols[last] <= snippetContext {
		n += cols[last]
		last++
	}
	var t, m strings.Builder
	if first > 0 {
		t.WriteString("...")
		m.WriteString("   ")
	}
	for i := first; i < last; i++ {
		t.WriteString(shown[i])
		switch {
		case i >= col:
		case shown[i] == "\t":
			m.WriteByte('\t')
		default:
			m.WriteString(strings.Repeat(" ", cols[i]))
		}
	}
	if last < len(raw) {
		t.WriteString("...")
	}
	under := 0
	for i := col; i < end; i++ {
		under += cols[i]
	}
	m.WriteString(strings.Repeat("^", max(under, 1)))
	return t.String(), m.String()
}

// Escape makes text from a spec safe to print on a terminal: control
// characters (C0 but tab, DEL, C1), invisible formatting characters
// (bidirectional overrides, zero-width joiners, the byte order mark), line
// and paragraph separators and bytes that are not UTF-8 are written as Go
// escapes (\x1b, \u202e), so a spec can neither send escape sequences to
// the terminal nor reorder what it shows. A backslash is left as it is.
func Escape(s string) string {
	clean := true
	for _, r := range s {
		if escapes(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r < 0x80 && escapes(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case escapes(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}

func escapes(r rune) bool {
	switch {
	case r == '\t':
		return false
	case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f, r == utf8.RuneError:
		return true
	}
	return unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp)
}

func sourceLine(src []byte, n int) (string, bool) {
	if src == nil {
		return "", false
	}
	for i := 1; ; i++ {
		end := strings.IndexByte(string(src), '\n')
		if i == n {
			if end < 0 {
				return strings.TrimRight(string(src), "\r"), true
			}
			return strings.TrimRight(string(src[:end]), "\r"), true
		}
		if end < 0 {
			return "", false
		}
		src = src[end+1:]
	}
}

// FormatVersion is the version of the JSON form of diagnostics.
const FormatVersion = "1.0"

// JSONDiagnostic is the machine form of one diagnostic.
type JSONDiagnostic struct {
	Severity string   `json:"severity"`
	Summary  string   `json:"summary"`
	Detail   string   `json:"detail,omitempty"`
	Hint     string   `json:"hint,omitempty"`
	Path     string   `json:"path,omitempty"`
	Range    *JSONPos `json:"range,omitempty"`
}

// JSONPos is the machine form of a position.
type JSONPos struct {
	Filename string `json:"filename"`
	Line     int    `json:"line"`
	Column   int    `json:"column"`
}

// JSONReport is the versioned machine form of a validation result.
type JSONReport struct {
	FormatVersion string           `json:"format_version"`
	Valid         bool             `json:"valid"`
	ErrorCount    int              `json:"error_count"`
	WarningCount  int              `json:"warning_count"`
	Diagnostics   []JSONDiagnostic `json:"diagnostics"`
}

// Report builds the machine form of the diagnostics.
func (ds Diagnostics) Report() JSONReport {
	errs, warns := ds.Count()
	r := JSONReport{FormatVersion: FormatVersion, Valid: errs == 0, ErrorCount: errs, WarningCount: warns, Diagnostics: []JSONDiagnostic{}}
	for _, d := range ds {
		jd := JSONDiagnostic{Severity: d.Severity.String(), Summary: d.Summary, Detail: d.Detail, Hint: d.Hint, Path: d.Path}
		if d.Subject != nil {
			jd.Range = &JSONPos{Filename: d.Subject.Filename, Line: d.Subject.Line, Column: d.Subject.Column}
		}
		r.Diagnostics = append(r.Diagnostics, jd)
	}
	return r
}

// WriteJSON writes the machine form, indented, with a trailing newline.
func (ds Diagnostics) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(ds.Report())
}

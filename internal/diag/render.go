package diag

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
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
		b.WriteString(d.Subject.String())
		b.WriteString(": ")
	}
	b.WriteString(d.Severity.String())
	b.WriteString(": ")
	b.WriteString(d.Summary)
	if d.Path != "" {
		fmt.Fprintf(b, " (%s)", d.Path)
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
			fmt.Fprintf(b, "%s | %s\n", num, line)
			width := d.Width
			if width < 1 {
				width = 1
			}
			col := d.Subject.Column - 1
			if col < 0 {
				col = 0
			}
			// Keep tabs so the caret lines up under tab-indented text.
			pad := make([]byte, 0, col)
			for i := 0; i < col && i < len(line); i++ {
				if line[i] == '\t' {
					pad = append(pad, '\t')
				} else {
					pad = append(pad, ' ')
				}
			}
			fmt.Fprintf(b, "%s| %s%s\n", gutter, pad, strings.Repeat("^", width))
		}
	}
	if d.Detail != "" {
		fmt.Fprintf(b, "%s= %s\n", gutter, d.Detail)
	}
	if d.Hint != "" {
		fmt.Fprintf(b, "%s= hint: %s\n", gutter, d.Hint)
	}
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

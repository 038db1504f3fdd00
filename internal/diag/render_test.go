package diag

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestSnippetEscapesAndLinesUp: a snippet shows the spec's line with every
// control and invisible formatting character escaped, and the carets stand
// under the subject however wide its escaped neighbours are. Long lines
// are cut around the subject. Before the fix the line was printed raw.
func TestSnippetEscapesAndLinesUp(t *testing.T) {
	long := strings.Repeat("a, ", 40) + "BAD" + strings.Repeat(", z", 40)
	tests := []struct {
		name       string
		line       string
		col, width int
		text       string
		marks      string
	}{
		{"plain", "name: acme", 6, 4, "name: acme", "      ^^^^"},
		{"tab indented", "\tkey: x", 1, 3, "\tkey: x", "\t^^^"},
		{"escape sequences before the subject", "a \x1b[2J\x1b]0;t\x07 b: 1", 13, 1,
			`a \x1b[2J\x1b]0;t\x07 b: 1`, strings.Repeat(" ", 22) + "^"},
		{"the subject is a control character", "x # \x1b", 4, 1, `x # \x1b`, "    ^^^^"},
		{"bidirectional override in the subject", "k: \u202eevil", 3, 7, `k: \u202eevil`, "   ^^^^^^^^^^"},
		{"multi-byte characters count as one column", "ü: ✓ x", 4, 1, "ü: ✓ x", "    ^"},
		{"bytes that are not UTF-8", "a\xffb", 2, 1, `a\xffb`, "     ^"},
		{"long line cut around the subject", long, 120, 3,
			"..." + strings.Repeat("a, ", 20) + "BAD" + strings.Repeat(", z", 20) + "...",
			strings.Repeat(" ", 63) + "^^^"},
		{"column past the end", "ab", 9, 1, "ab", "  ^"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text, marks := snippet(tt.line, tt.col, tt.width)
			assert.Equal(t, tt.text, text)
			assert.Equal(t, tt.marks, marks)
		})
	}
}

// TestWriteTextEscapesEveryField: summary, path, detail, hint and file
// name reach the terminal escaped too.
func TestWriteTextEscapesEveryField(t *testing.T) {
	ds := Diagnostics{{Severity: Error, Subject: &Pos{Filename: "s\x1b[2J.yaml", Line: 1, Column: 1},
		Summary: "bad \x1b]0;x\x07", Path: "a.\x1bb", Detail: "d\u202e", Hint: "h\u009b"}}
	var b strings.Builder
	assert.NoError(t, ds.WriteText(&b, Sources{"s\x1b[2J.yaml": []byte("k\x1b: v\n")}))
	assert.Equal(t, `s\x1b[2J.yaml:1:1: error: bad \x1b]0;x\x07 (a.\x1bb)
   1 | k\x1b: v
     | ^
     = d\u202e
     = hint: h\u009b
`, b.String())
}

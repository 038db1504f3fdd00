// Package diag holds diagnostics: feedback about problems in the user's input
// or environment, with a source position where one is known.
//
// A nil Diagnostics is a valid, empty list. Functions that validate input
// return Diagnostics instead of error so that every problem of a run is
// reported at once, not only the first.
package diag

import (
	"fmt"
	"sort"
	"strings"
)

// Severity says whether a diagnostic fails the run.
type Severity int

const (
	// Error fails the run.
	Error Severity = iota
	// Warning is reported but does not fail the run.
	Warning
)

// String returns "error" or "warning".
func (s Severity) String() string {
	if s == Warning {
		return "warning"
	}
	return "error"
}

// Pos is a position in a source file. Line and Column start at 1; a zero
// Line means the position is unknown.
type Pos struct {
	Filename string
	Line     int
	Column   int
}

// String formats the position as file:line:column.
func (p Pos) String() string {
	if p.Line == 0 {
		return p.Filename
	}
	return fmt.Sprintf("%s:%d:%d", p.Filename, p.Line, p.Column)
}

// Diagnostic is one problem.
type Diagnostic struct {
	Severity Severity
	// Summary says what is wrong, in one line.
	Summary string
	// Detail adds what was expected or why it matters.
	Detail string
	// Hint says how to fix it.
	Hint string
	// Path is the field path in the spec, e.g. "components.tracardi.version".
	Path string
	// Subject is where the problem is; nil for environmental problems.
	Subject *Pos
	// Width is how many columns of the source line to underline (0 = 1).
	Width int
}

// Error implements error so a single diagnostic can travel as one.
func (d Diagnostic) Error() string {
	var b strings.Builder
	if d.Subject != nil {
		b.WriteString(d.Subject.String())
		b.WriteString(": ")
	}
	b.WriteString(d.Summary)
	if d.Detail != "" {
		b.WriteString("; ")
		b.WriteString(d.Detail)
	}
	if d.Hint != "" {
		b.WriteString(" (hint: ")
		b.WriteString(d.Hint)
		b.WriteString(")")
	}
	return b.String()
}

// Diagnostics is a list of diagnostics.
type Diagnostics []Diagnostic

// Errorf appends an error diagnostic at pos (which may be nil).
func (ds *Diagnostics) Errorf(pos *Pos, path, hint, format string, args ...any) {
	*ds = append(*ds, Diagnostic{Severity: Error, Subject: pos, Path: path, Hint: hint, Summary: fmt.Sprintf(format, args...)})
}

// Warnf appends a warning diagnostic at pos (which may be nil).
func (ds *Diagnostics) Warnf(pos *Pos, path, hint, format string, args ...any) {
	*ds = append(*ds, Diagnostic{Severity: Warning, Subject: pos, Path: path, Hint: hint, Summary: fmt.Sprintf(format, args...)})
}

// Append adds diagnostics or errors; an error that is not a diagnostic
// becomes a sourceless error diagnostic.
func (ds Diagnostics) Append(items ...any) Diagnostics {
	for _, it := range items {
		switch v := it.(type) {
		case nil:
		case Diagnostic:
			ds = append(ds, v)
		case Diagnostics:
			ds = append(ds, v...)
		case error:
			ds = append(ds, Diagnostic{Severity: Error, Summary: v.Error()})
		default:
			panic(fmt.Sprintf("diag.Append: unsupported %T", it))
		}
	}
	return ds
}

// HasErrors reports whether any diagnostic is an error.
func (ds Diagnostics) HasErrors() bool {
	for _, d := range ds {
		if d.Severity == Error {
			return true
		}
	}
	return false
}

// Count returns how many errors and warnings the list holds.
func (ds Diagnostics) Count() (errors, warnings int) {
	for _, d := range ds {
		if d.Severity == Error {
			errors++
		} else {
			warnings++
		}
	}
	return errors, warnings
}

// Sort orders the list by file, line and column; sourceless ones last.
// The sort is stable so equal positions keep the order they were found in.
func (ds Diagnostics) Sort() {
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i].Subject, ds[j].Subject
		switch {
		case a == nil && b == nil:
			return false
		case a == nil:
			return false
		case b == nil:
			return true
		case a.Filename != b.Filename:
			return a.Filename < b.Filename
		case a.Line != b.Line:
			return a.Line < b.Line
		default:
			return a.Column < b.Column
		}
	})
}

// Package lazyre compiles regular expressions on first use instead of at
// start-up: every command pays for package initialisation, and most never
// need a given pattern.
package lazyre

import (
	"regexp"
	"sync"
)

// New returns a function that compiles expr once, on its first call.
func New(expr string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}

package spec

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad checks that no input makes the loader panic, and that every
// error it reports has a position. The seed corpus (testdata/fuzz/FuzzLoad
// plus the examples) runs as a normal test.
func FuzzLoad(f *testing.F) {
	files, _ := filepath.Glob("../../examples/*/stack.yaml")
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(good))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, ds := Load("fuzz.yaml", data)
		if ds.HasErrors() && st != nil {
			t.Fatalf("errors reported but a stack returned")
		}
		if !ds.HasErrors() && st == nil {
			t.Fatalf("no errors but no stack")
		}
		for _, d := range ds {
			if d.Subject == nil {
				t.Fatalf("diagnostic without position: %v", d)
			}
		}
		if st != nil {
			st.WithDefaults(nil)
		}
	})
}

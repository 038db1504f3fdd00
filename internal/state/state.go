// Package state is the stack's local state directory: generated secrets
// today, locks and journals later. The directory is 0700, every file 0600,
// and it carries a .gitignore so it is never committed by accident.
//
// Layout:
//
//	.orchestrator/
//	  .gitignore          "*"
//	  secrets/<name>      one generated secret per file, no trailing newline
//	  <backend>/...       files a backend derives from secrets (env files, configs)
package state

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/aipairpro/orchestrator/internal/lazyre"
	"github.com/aipairpro/orchestrator/internal/model"
)

// DirName is the default state directory, created beside the spec.
const DirName = ".orchestrator"

const (
	dirMode  fs.FileMode = 0o700
	fileMode fs.FileMode = 0o600
)

// Store is an open state directory.
type Store struct {
	dir string
	// rand is the randomness source; tests may replace it.
	rand func(b []byte) (int, error)
}

// Open opens the state directory, creating it (0700) with its .gitignore
// when missing. An existing directory with looser permissions is tightened.
func Open(dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, dirMode); err != nil {
		return nil, fmt.Errorf("create state directory: %w", err)
	}
	if err := os.Chmod(abs, dirMode); err != nil {
		return nil, fmt.Errorf("secure state directory: %w", err)
	}
	s := &Store{dir: abs, rand: rand.Read}
	if err := s.WriteFile(".gitignore", []byte("# Secrets live here: never commit this directory.\n*\n")); err != nil {
		return nil, err
	}
	return s, nil
}

// Dir returns the absolute path of the state directory.
func (s *Store) Dir() string { return s.dir }

// SecretPath returns where the named secret's file is kept.
func (s *Store) SecretPath(name string) string {
	return filepath.Join(s.dir, "secrets", name)
}

var secretNameRe = lazyre.New(`^[a-z0-9][a-z0-9._-]*$`)

// Secret returns the named secret, generating and saving it on first use.
// The same name always yields the same value for this state directory, so
// a service keeps its credentials across renders and across phases.
func (s *Store) Secret(name string, kind model.SecretKind) (string, error) {
	if !secretNameRe().MatchString(name) {
		return "", fmt.Errorf("invalid secret name %q", name)
	}
	p := s.SecretPath(name)
	b, err := os.ReadFile(p)
	if err == nil {
		return SecretValue(p, b)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read secret %s: %w", name, err)
	}
	v, err := s.generate(kind)
	if err != nil {
		return "", fmt.Errorf("generate secret %s: %w", name, err)
	}
	return s.createOnce(p, v)
}

// SecretValue is the one place a secret file's bytes become a value: one
// trailing line break (what an editor, `echo` or a restored backup adds) is
// dropped, and a value that is empty, not UTF-8, or holds any other control
// character is refused with an error naming the file, since no sink (URL,
// YAML, env file, SQL) could carry it unchanged. Each sink encodes what is
// left through its own encoder.
func SecretValue(path string, b []byte) (string, error) {
	v := string(b)
	if strings.HasSuffix(v, "\r\n") {
		v = v[:len(v)-2]
	} else if strings.HasSuffix(v, "\n") {
		v = v[:len(v)-1]
	}
	if v == "" {
		return "", fmt.Errorf("secret file %s is empty; restore it from backup, or delete it to generate a new value (only when no data was created with the old one)", path)
	}
	if !utf8.ValidString(v) {
		return "", fmt.Errorf("secret file %s is not UTF-8 text; restore it from backup", path)
	}
	for i, r := range v {
		if r < 0x20 || r == 0x7f || r >= 0x80 && r <= 0x9f {
			return "", fmt.Errorf("secret file %s has a control character (%U) at byte %d; a secret is one line of printable text: fix the file (a trailing line break is fine)", path, r, i)
		}
	}
	return v, nil
}

// createOnce writes a new secret only if none exists yet: two processes
// generating the same secret at once (a plan beside the first up) must end
// with one value, not the last writer's. The winner's value is returned.
func (s *Store) createOnce(path, value string) (string, error) {
	if err := os.MkdirAll(filepath.Dir(path), dirMode); err != nil {
		return "", err
	}
	tmp, err := writeTemp(path, []byte(value), fileMode, true)
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp)
	// link(2) fails if the name exists: exactly one creator wins.
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			b, rerr := os.ReadFile(path)
			if rerr != nil {
				return "", rerr
			}
			return SecretValue(path, b)
		}
		return "", err
	}
	return value, nil
}

// WriteFile writes a file under the state directory atomically, with mode
// 0600 and its parent directories 0700. An unchanged file is not rewritten.
func (s *Store) WriteFile(rel string, data []byte) error {
	if filepath.IsAbs(rel) || strings.HasPrefix(filepath.Clean(rel), "..") {
		return fmt.Errorf("state file %q escapes the state directory", rel)
	}
	p := filepath.Join(s.dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), dirMode); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(p), err)
	}
	if old, err := os.ReadFile(p); err == nil && string(old) == string(data) {
		return os.Chmod(p, fileMode)
	}
	return writeAtomic(p, data, fileMode)
}

// writeAtomic writes through a temporary file in the same directory and a
// rename, so an interrupted write never leaves a half-written file.
func writeAtomic(path string, data []byte, mode fs.FileMode) error {
	return replace(path, data, mode, true)
}

// replace swaps data in at path with a rename, so readers see the old or
// the new content, never a mix. sync makes the content durable first.
func replace(path string, data []byte, mode fs.FileMode, sync bool) error {
	tmp, err := writeTemp(path, data, mode, sync)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	return os.Rename(tmp, path)
}

// writeTemp writes data to a new temporary file beside path (synced when
// sync is set) and returns its name; the caller renames or links it into
// place.
func writeTemp(path string, data []byte, mode fs.FileMode, sync bool) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return "", err
	}
	err = f.Chmod(mode)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// WriteAtomic is the atomic write used for rendered output too.
func WriteAtomic(path string, data []byte, mode fs.FileMode) error {
	return writeAtomic(path, data, mode)
}

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

func (s *Store) generate(kind model.SecretKind) (string, error) {
	switch kind {
	case model.Token:
		b := make([]byte, 32)
		if _, err := s.rand(b); err != nil {
			return "", err
		}
		return hex.EncodeToString(b), nil
	case model.Key32:
		b := make([]byte, 32)
		if _, err := s.rand(b); err != nil {
			return "", err
		}
		return base64.StdEncoding.EncodeToString(b), nil
	case model.Password, "":
		// Letters and digits keep the value safe inside URLs, env files and
		// YAML; the classes and the '-' satisfy the strictest rule among the
		// components (Kestra's basic auth wants upper, lower, digit, special).
		for {
			v, err := s.randomString(32)
			if err != nil {
				return "", err
			}
			if strings.ContainsAny(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") && strings.ContainsAny(v, "abcdefghijklmnopqrstuvwxyz") && strings.ContainsAny(v, "0123456789") {
				return v[:16] + "-" + v[16:], nil
			}
		}
	}
	return "", fmt.Errorf("unknown secret kind %q", kind)
}

func (s *Store) randomString(n int) (string, error) {
	out := make([]byte, n)
	max := big.NewInt(int64(len(alnum)))
	for i := range out {
		k, err := rand.Int(readerFunc(s.rand), max)
		if err != nil {
			return "", err
		}
		out[i] = alnum[k.Int64()]
	}
	return string(out), nil
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(b []byte) (int, error) { return f(b) }

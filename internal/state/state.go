// Package state is the stack's local state directory: generated secrets,
// the lock, and what a backend derives from them. The directory is 0700,
// every file 0600, it carries a .gitignore so it is never committed by
// accident, and nothing is written in it through a symbolic link.
//
// Layout:
//
//	.orchestrator/
//	  .gitignore          "*", after a first line that marks the directory as ours
//	  secrets/<name>      one generated secret per file, no trailing newline
//	  pending/<name>      a secret generated without checking the target for data
//	  lock, lock.info     the stack's lock and its holder
//	  <backend>/...       files a backend derives from secrets (env files, configs)
package state

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
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

// gitignore is the state directory's .gitignore, and its marker: a
// directory whose .gitignore starts with its first line, or that holds a
// secrets/ directory, is a state directory.
const gitignore = "# Secrets live here: never commit this directory.\n*\n"

// Store is an open state directory.
type Store struct {
	dir string
	// rand is the randomness source; tests may replace it.
	rand func(b []byte) (int, error)
	// readOnly stores never create, change or write anything.
	readOnly bool
	// exists is false for a read-only store of a directory that does not
	// exist yet: it reads as empty.
	exists bool
	notify func(string)
	noted  sync.Map
}

// OpenOptions say how a state directory is opened.
type OpenOptions struct {
	// ReadOnly opens the directory without creating, changing or writing
	// anything in it, for the commands that only read (plan, status): a
	// missing directory reads as empty, and modes that a writing command
	// would tighten are only noted.
	ReadOnly bool
	// Notify receives notes for the user: a mode tightened, or one that
	// should be. Nil drops them.
	Notify func(note string)
}

// Open opens the state directory for writing, creating it (0700) with its
// .gitignore when missing. See OpenWith.
func Open(dir string) (*Store, error) { return OpenWith(dir, OpenOptions{}) }

// OpenWith opens the state directory. A directory is taken only when it
// does not exist yet, is empty, or is a state directory already (its
// .gitignore marker or a secrets/ directory); any other directory is
// refused, so --state-dir pointed at the wrong place never takes it over.
// It must belong to the current user. A state directory that others may
// read is tightened to 0700 with a note; one we did not create (an empty
// one adopted, a shared one with the sticky bit) keeps its mode, and its
// secrets go into a 0700 subdirectory. Files we did not create, such as
// another .gitignore, are never rewritten.
func OpenWith(dir string, opts OpenOptions) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	s := &Store{dir: abs, rand: rand.Read, readOnly: opts.ReadOnly, notify: opts.Notify}
	fi, err := os.Stat(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if opts.ReadOnly {
			return s, nil
		}
		if err := os.MkdirAll(abs, dirMode); err != nil {
			return nil, fmt.Errorf("create state directory: %w", err)
		}
		s.exists = true
		return s, s.writeMarker()
	case err != nil:
		return nil, fmt.Errorf("state directory: %w", err)
	case !fi.IsDir():
		return nil, fmt.Errorf("state directory %s is not a directory; give --state-dir a new or empty directory", abs)
	}
	s.exists = true
	if err := s.checkOwner(abs, fi); err != nil {
		return nil, err
	}
	kind, err := classify(abs)
	if err != nil {
		return nil, err
	}
	switch kind {
	case foreignDir:
		return nil, fmt.Errorf("%s is not empty and is not an orchestrator state directory (no .gitignore starting %q, no secrets/): refusing to keep secrets there or change it; give --state-dir a new or empty directory, or this stack's state directory", abs, strings.SplitN(gitignore, "\n", 2)[0])
	case emptyDir:
		if fi.Mode().Perm()&^dirMode != 0 {
			s.note(abs, fmt.Sprintf("Note: %s was not created by orchestrator and is mode %04o: left as it is; the secrets go into %s (0700).", abs, modeBits(fi), filepath.Join(abs, "secrets")))
		}
	case stateDir:
		if err := s.tighten(abs, ".", fi, dirMode); err != nil {
			return nil, err
		}
	}
	if opts.ReadOnly {
		return s, nil
	}
	return s, s.writeMarker()
}

type dirKind int

const (
	emptyDir dirKind = iota
	stateDir
	foreignDir
)

// classify tells an empty directory, a state directory and any other one
// apart. Temporary files of a concurrent run do not count.
func classify(dir string) (dirKind, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("state directory: %w", err)
	}
	empty := true
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") && strings.Contains(e.Name(), tempMark) {
			continue
		}
		empty = false
		switch {
		case e.Name() == "secrets" && e.Type().IsDir():
			return stateDir, nil
		case e.Name() == ".gitignore" && e.Type().IsRegular():
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err == nil && strings.HasPrefix(string(b), strings.SplitN(gitignore, "\n", 2)[0]+"\n") {
				return stateDir, nil
			}
		}
	}
	if empty {
		return emptyDir, nil
	}
	return foreignDir, nil
}

// writeMarker creates the .gitignore when there is none; one that is
// there (ours, or the user's) is left as it is.
func (s *Store) writeMarker() error {
	root, err := os.OpenRoot(s.dir)
	if err != nil {
		return err
	}
	defer root.Close()
	if _, err := root.Lstat(".gitignore"); !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	tmp, err := tempIn(root, ".gitignore", []byte(gitignore), fileMode, true)
	if err != nil {
		return err
	}
	defer root.Remove(tmp)
	// link(2), not rename: a .gitignore made meanwhile is not replaced.
	if err := root.Link(tmp, ".gitignore"); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("write %s: %w", filepath.Join(s.dir, ".gitignore"), err)
	}
	return nil
}

// checkOwner refuses a file or directory that belongs to another user:
// its owner could read or replace the secrets.
func (s *Store) checkOwner(path string, fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || int(st.Uid) == os.Geteuid() {
		return nil
	}
	return fmt.Errorf("%s belongs to uid %d, not to you (uid %d): its owner could read or replace the secrets. If it is yours, `chown -R %d` the state directory (tar run as root keeps an archive's owners: extract with --no-same-owner); else use a state directory of your own", path, st.Uid, os.Geteuid(), os.Geteuid())
}

// tighten makes a state directory's file or directory private (mode want)
// when others may use it, with a note; a read-only store only notes it.
// A directory with the sticky bit is shared by design and left alone.
func (s *Store) tighten(path, rel string, fi fs.FileInfo, want fs.FileMode) error {
	if fi.Mode().Perm()&^want == 0 || fi.Mode()&fs.ModeSticky != 0 {
		return nil
	}
	if s.readOnly {
		s.note(path, fmt.Sprintf("Note: %s is mode %04o, open to other users; the next up or render tightens it to %04o.", path, modeBits(fi), want))
		return nil
	}
	root, err := os.OpenRoot(s.dir)
	if err != nil {
		return err
	}
	defer root.Close()
	if err := root.Chmod(rel, want); err != nil {
		return fmt.Errorf("tighten %s: %w", path, err)
	}
	s.note(path, fmt.Sprintf("Note: %s was mode %04o, open to other users; tightened to %04o.", path, modeBits(fi), want))
	return nil
}

// modeBits are the permission bits with setuid, setgid and sticky, as
// chmod writes them.
func modeBits(fi fs.FileInfo) fs.FileMode {
	m := fi.Mode().Perm()
	if fi.Mode()&fs.ModeSticky != 0 {
		m |= 0o1000
	}
	if fi.Mode()&fs.ModeSetgid != 0 {
		m |= 0o2000
	}
	if fi.Mode()&fs.ModeSetuid != 0 {
		m |= 0o4000
	}
	return m
}

// note passes a note on once per path.
func (s *Store) note(path, msg string) {
	if s.notify == nil {
		return
	}
	if _, seen := s.noted.LoadOrStore(path, true); !seen {
		s.notify(msg)
	}
}

// Dir returns the absolute path of the state directory.
func (s *Store) Dir() string { return s.dir }

// Exists reports whether the state directory exists; only a read-only
// store of a directory not created yet says no.
func (s *Store) Exists() bool { return s.exists }

// ReadOnly reports whether the store was opened read-only.
func (s *Store) ReadOnly() bool { return s.readOnly }

// SecretPath returns where the named secret's file is kept.
func (s *Store) SecretPath(name string) string {
	return filepath.Join(s.dir, "secrets", name)
}

var secretNameRe = lazyre.New(`^[a-z0-9][a-z0-9._-]*$`)

// Secret returns the named secret, generating and saving it on first use
// (Generate). The same name always yields the same value for this state
// directory, so a service keeps its credentials across renders and across
// phases.
func (s *Store) Secret(name string, kind model.SecretKind) (string, error) {
	v, ok, err := s.Lookup(name, kind)
	if err != nil || ok {
		return v, err
	}
	return s.Generate(name, kind)
}

// maxSecretSize bounds what is read from a secret file: a value is one
// line, and a file restored wrongly (an archive, a dump) must not be read
// whole into memory.
const maxSecretSize = 64 << 10

// Lookup reads the named secret without generating it: ok is false when
// its file does not exist. The file must be a regular file of the current
// user (a symbolic link is refused), and its value is checked as
// SecretValue and CheckKind say. A file or secrets/ directory that others
// may read is tightened to 0600 / 0700 with a note (only noted by a
// read-only store).
func (s *Store) Lookup(name string, kind model.SecretKind) (value string, ok bool, err error) {
	if !secretNameRe().MatchString(name) {
		return "", false, fmt.Errorf("invalid secret name %q", name)
	}
	if !s.exists {
		return "", false, nil
	}
	root, err := os.OpenRoot(s.dir)
	if err != nil {
		return "", false, err
	}
	defer root.Close()
	rel := filepath.Join("secrets", name)
	p := s.SecretPath(name)
	if err := noSymlinks(root, rel); err != nil {
		return "", false, err
	}
	if fi, err := root.Lstat("secrets"); err == nil {
		if err := s.checkOwner(filepath.Dir(p), fi); err != nil {
			return "", false, err
		}
		if err := s.tighten(filepath.Dir(p), "secrets", fi, dirMode); err != nil {
			return "", false, err
		}
	}
	// Only a regular file is opened: a FIFO would block the open.
	if fi, err := root.Lstat(rel); errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	} else if err == nil && !fi.Mode().IsRegular() {
		return "", false, fmt.Errorf("secret file %s is not a regular file; restore it from backup", p)
	}
	f, err := root.Open(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read secret %s: %w", name, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", false, fmt.Errorf("read secret %s: %w", name, err)
	}
	if !fi.Mode().IsRegular() {
		return "", false, fmt.Errorf("secret file %s is not a regular file; restore it from backup", p)
	}
	if err := s.checkOwner(p, fi); err != nil {
		return "", false, err
	}
	if err := s.tighten(p, rel, fi, fileMode); err != nil {
		return "", false, err
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecretSize+1))
	if err != nil {
		return "", false, fmt.Errorf("read secret %s: %w", name, err)
	}
	if len(b) > maxSecretSize {
		return "", false, fmt.Errorf("secret file %s is larger than %d KiB; a secret is one line of text: restore it from backup", p, maxSecretSize>>10)
	}
	v, err := SecretValue(p, b)
	if err != nil {
		return "", false, err
	}
	if err := CheckKind(p, v, kind); err != nil {
		return "", false, err
	}
	return v, true, nil
}

// Generate makes a new value for the named secret and saves it, unless a
// concurrent run saved one first, whose value is then returned. A
// generated secret is marked unchecked (Unchecked) until MarkChecked says
// the target was found to hold no data made with an older value.
// Read-only stores refuse.
func (s *Store) Generate(name string, kind model.SecretKind) (string, error) {
	if !secretNameRe().MatchString(name) {
		return "", fmt.Errorf("invalid secret name %q", name)
	}
	if s.readOnly {
		return "", fmt.Errorf("secret %s is missing and this command only reads the state directory %s", name, s.dir)
	}
	v, err := s.generate(kind)
	if err != nil {
		return "", fmt.Errorf("generate secret %s: %w", name, err)
	}
	// The mark goes first: a run killed between the two leaves a mark
	// without a secret (harmless), never a new secret without its mark.
	if err := s.WriteFile(filepath.Join(pendingDir, name), []byte(digest(v)+"\n")); err != nil {
		return "", err
	}
	return s.createOnce(name, kind, v)
}

// NewValue makes a value of kind without saving it: what a dry run shows
// in place of a secret it would generate.
func (s *Store) NewValue(kind model.SecretKind) (string, error) {
	return s.generate(kind)
}

// pendingDir holds a mark per generated secret that no run has yet
// checked against the target's data: a render made it, without an engine
// to ask. The mark holds the value's digest, so a file restored from
// backup over the new value no longer counts as new.
const pendingDir = "pending"

// Unchecked reports whether the named secret, holding value, was
// generated by a run that did not check the target for data made with an
// older value (and was not replaced since).
func (s *Store) Unchecked(name, value string) (bool, error) {
	if !s.exists {
		return false, nil
	}
	root, err := os.OpenRoot(s.dir)
	if err != nil {
		return false, err
	}
	defer root.Close()
	rel := filepath.Join(pendingDir, name)
	if err := noSymlinks(root, rel); err != nil {
		return false, err
	}
	b, err := root.ReadFile(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return strings.TrimSpace(string(b)) == digest(value), nil
}

// MarkChecked drops the unchecked marks of the named secrets: the target
// holds no data made with other values.
func (s *Store) MarkChecked(names ...string) error {
	if s.readOnly || !s.exists {
		return nil
	}
	root, err := os.OpenRoot(s.dir)
	if err != nil {
		return err
	}
	defer root.Close()
	for _, name := range names {
		rel := filepath.Join(pendingDir, name)
		if err := noSymlinks(root, rel); err != nil {
			return err
		}
		if err := root.Remove(rel); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// digest identifies a value without revealing it (a SHA-256 of a
// high-entropy secret).
func digest(v string) string {
	h := sha256.Sum256([]byte(v))
	return "sha256:" + hex.EncodeToString(h[:])
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

var (
	generatedPassword       = lazyre.New(`^[A-Za-z0-9]{16}-[A-Za-z0-9]{16}$`)
	generatedPasswordPrefix = lazyre.New(`^[A-Za-z0-9]{16}-`)
	lowerHex                = lazyre.New(`^[0-9a-f]+$`)
)

// CheckKind refuses a value that its consumer cannot use, or that is a
// generated value damaged (cut short, or joined to something):
//
//   - Key32 must be standard base64 of exactly 32 bytes: Kestra decodes it
//     into its AES-256 key (what `openssl rand -base64 32` prints, and what
//     we generate).
//   - Password: a value that starts like a generated one (16 letters or
//     digits and a '-') must be whole: 33 characters.
//   - Token: a value of lower-case hex digits longer than 40 (the longest
//     common hex token people bring, SHA-1's) must have the generated 64.
//
// Any other printable value is accepted: a password or token restored
// from an existing installation is the user's to choose, and PostgreSQL,
// MySQL, Postiz and Tracardi take any. No length minimum applies to them,
// so a value cut before a generated password's '-' goes unnoticed here.
func CheckKind(path, v string, kind model.SecretKind) error {
	switch kind {
	case model.Key32:
		b, err := base64.StdEncoding.Strict().DecodeString(v)
		if err != nil || len(b) != 32 {
			what := "is not standard base64"
			if err == nil {
				what = fmt.Sprintf("decodes to %d bytes", len(b))
			}
			return fmt.Errorf("secret file %s must hold a key of 32 bytes in base64 (44 characters, as `openssl rand -base64 32` prints); its %d characters %s. Restore it from backup: data is encrypted with the old key", path, len(v), what)
		}
	case model.Password, "":
		if generatedPasswordPrefix().MatchString(v) && !generatedPassword().MatchString(v) {
			return fmt.Errorf("secret file %s holds %d characters of a generated password, which has 33 (16 letters or digits, '-', 16 more): it was cut short or joined to something. Restore it from backup", path, len(v))
		}
	case model.Token:
		if len(v) > 40 && len(v) != 64 && lowerHex().MatchString(v) {
			return fmt.Errorf("secret file %s holds %d hex digits of a generated token, which has 64: it was cut short or joined to something. Restore it from backup", path, len(v))
		}
	}
	return nil
}

// createOnce writes a new secret only if none exists yet: two processes
// generating the same secret at once must end with one value, not the
// last writer's. The winner's value is returned.
func (s *Store) createOnce(name string, kind model.SecretKind, value string) (string, error) {
	root, err := os.OpenRoot(s.dir)
	if err != nil {
		return "", err
	}
	defer root.Close()
	rel := filepath.Join("secrets", name)
	if err := mkdirAllIn(root, "secrets", dirMode); err != nil {
		return "", err
	}
	if err := noSymlinks(root, rel); err != nil {
		return "", err
	}
	tmp, err := tempIn(root, rel, []byte(value), fileMode, true)
	if err != nil {
		return "", err
	}
	defer root.Remove(tmp)
	// link(2) fails if the name exists: exactly one creator wins.
	if err := root.Link(tmp, rel); err != nil {
		if errors.Is(err, fs.ErrExist) {
			v, ok, err := s.Lookup(name, kind)
			if err == nil && !ok {
				err = fmt.Errorf("secret file %s vanished while it was being created", s.SecretPath(name))
			}
			return v, err
		}
		return "", fmt.Errorf("write %s: %w", s.SecretPath(name), err)
	}
	return value, nil
}

// WriteFile writes a file under the state directory atomically, with mode
// 0600 and its parent directories 0700, never through a symbolic link or
// out of the directory. An unchanged file is not rewritten.
func (s *Store) WriteFile(rel string, data []byte) error {
	if s.readOnly {
		return fmt.Errorf("%s: this command only reads the state directory %s", rel, s.dir)
	}
	if err := local(rel); err != nil {
		return fmt.Errorf("state file %q escapes the state directory", rel)
	}
	root, err := os.OpenRoot(s.dir)
	if err != nil {
		return err
	}
	defer root.Close()
	_, err = writeIn(root, rel, data, fileMode, dirMode, true)
	return err
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

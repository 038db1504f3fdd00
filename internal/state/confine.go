package state

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
)

// Every file this tool writes under the state directory or the render
// directory stays inside it. A path is resolved under an os.Root, which
// refuses to leave its directory whatever a symbolic link inside says, and
// each of its components is Lstat'ed first, so a link planted inside
// (state/compose/env -> /elsewhere, or -> ../secrets) is refused with its
// name instead of being followed. Both directories are ours: nothing in
// them needs a link.

// SymlinkError reports a symbolic link where this tool writes or reads.
type SymlinkError struct {
	// Path is the link.
	Path string
}

// Error names the link and what to do about it.
func (e *SymlinkError) Error() string {
	return fmt.Sprintf("%s is a symbolic link: refusing to follow it (files are written and read here only through real directories); remove the link and run again", e.Path)
}

// components splits a clean relative path into its growing prefixes:
// "a/b/c" gives "a", "a/b", "a/b/c".
func components(rel string) []string {
	rel = filepath.Clean(rel)
	if rel == "." {
		return nil
	}
	var out []string
	cur := ""
	for _, p := range strings.Split(rel, string(filepath.Separator)) {
		cur = filepath.Join(cur, p)
		out = append(out, cur)
	}
	return out
}

// local refuses a path that is absolute or climbs out of its directory.
func local(rel string) error {
	if !filepath.IsLocal(rel) {
		return fmt.Errorf("%q is not a path inside its directory", rel)
	}
	return nil
}

// noSymlinks refuses rel when any existing component of it is a symbolic
// link; components that do not exist yet are fine.
func noSymlinks(root *os.Root, rel string) error {
	for _, c := range components(rel) {
		fi, err := root.Lstat(c)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return &SymlinkError{Path: filepath.Join(root.Name(), c)}
		}
	}
	return nil
}

// mkdirAllIn creates rel and its missing parents under root with perm,
// refusing a component that is a link or not a directory.
func mkdirAllIn(root *os.Root, rel string, perm fs.FileMode) error {
	for _, c := range components(rel) {
		fi, err := root.Lstat(c)
		if errors.Is(err, fs.ErrNotExist) {
			if err := root.Mkdir(c, perm); err != nil && !errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("create %s: %w", filepath.Join(root.Name(), c), err)
			}
			// Look again: a concurrent run may have made it first.
			fi, err = root.Lstat(c)
		}
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return &SymlinkError{Path: filepath.Join(root.Name(), c)}
		}
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", filepath.Join(root.Name(), c))
		}
	}
	return nil
}

// writeIn writes data to rel under root atomically (a temporary file
// beside it and a rename), with mode, creating missing parents with
// dirMode. A file that already holds data is not rewritten; only its mode
// is corrected. It reports whether anything changed on disk.
func writeIn(root *os.Root, rel string, data []byte, mode, dirMode fs.FileMode, sync bool) (bool, error) {
	if err := local(rel); err != nil {
		return false, err
	}
	rel = filepath.Clean(rel)
	if err := mkdirAllIn(root, filepath.Dir(rel), dirMode); err != nil {
		return false, err
	}
	if err := noSymlinks(root, rel); err != nil {
		return false, err
	}
	if fi, err := root.Lstat(rel); err == nil && fi.Mode().IsRegular() {
		if old, err := root.ReadFile(rel); err == nil && bytes.Equal(old, data) {
			if fi.Mode().Perm() == mode {
				return false, nil
			}
			return true, root.Chmod(rel, mode)
		}
	}
	tmp, err := tempIn(root, rel, data, mode, sync)
	if err != nil {
		return false, err
	}
	defer root.Remove(tmp)
	if err := root.Rename(tmp, rel); err != nil {
		return false, fmt.Errorf("write %s: %w", filepath.Join(root.Name(), rel), err)
	}
	return true, nil
}

// tempIn writes data to a new temporary file beside rel (synced when sync
// is set) and returns its name under root; the caller renames or links it
// into place.
func tempIn(root *os.Root, rel string, data []byte, mode fs.FileMode, sync bool) (string, error) {
	dir, base := filepath.Split(rel)
	for range 100 {
		var suffix [6]byte
		for i := range suffix {
			suffix[i] = byte(rand.Uint32())
		}
		name := filepath.Join(dir, "."+base+tempMark+hex.EncodeToString(suffix[:]))
		f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("write %s: %w", filepath.Join(root.Name(), rel), err)
		}
		err = f.Chmod(mode) // the umask narrowed the mode OpenFile asked for
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
			root.Remove(name)
			return "", fmt.Errorf("write %s: %w", filepath.Join(root.Name(), rel), err)
		}
		return name, nil
	}
	return "", fmt.Errorf("write %s: no free temporary name", filepath.Join(root.Name(), rel))
}

// tempMark is in the name of every temporary file: ".<name>.tmp-<hex>".
const tempMark = ".tmp-"

// WriteInside writes data to rel under dir the way rendered files are
// written: atomically, only when the content or mode changed, with missing
// parent directories created with dirMode, and never through a symbolic
// link (SymlinkError) or out of dir. dir itself is created when missing.
// It reports whether anything changed on disk.
func WriteInside(dir, rel string, data []byte, mode, dirMode fs.FileMode) (bool, error) {
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return false, fmt.Errorf("create %s: %w", dir, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return false, err
	}
	defer root.Close()
	return writeIn(root, rel, data, mode, dirMode, true)
}

// writeAtomic writes path atomically, confined to its directory.
func writeAtomic(path string, data []byte, mode fs.FileMode) error {
	_, err := WriteInside(filepath.Dir(path), filepath.Base(path), data, mode, dirMode)
	return err
}

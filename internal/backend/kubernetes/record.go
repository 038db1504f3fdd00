package kubernetes

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// AppliedFile is the record of the last apply in TargetOptions.StateDir:
// each object's address with a digest of what was applied (a SHA-256 of
// the object as sent, which reveals no secret value). Plan reads it to
// tell drift, a live object deleted or edited by hand since, from a change
// of the spec that nobody has applied yet.
const AppliedFile = "applied.json"

// recordFormat is the version of AppliedFile's layout.
const recordFormat = "1"

type appliedRecord struct {
	FormatVersion string            `json:"format_version"`
	Stack         string            `json:"stack"`
	Namespace     string            `json:"namespace"`
	ApplySet      string            `json:"applyset"`
	Objects       map[string]string `json:"objects"`
}

// digest is the SHA-256 of an object's manifest as sent.
func digest(body []byte) string {
	sum := sha256.Sum256(body)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// readRecord returns the last apply's digests by address; nil without a
// state directory, a record, or with a record of another namespace.
func (t *Target) readRecord() (map[string]string, error) {
	if t.stateDir == "" {
		return nil, nil
	}
	root, err := os.OpenRoot(t.stateDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer root.Close()
	data, err := root.ReadFile(AppliedFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var rec appliedRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("%s/%s: %w (delete it: it only serves to report drift)", t.stateDir, AppliedFile, err)
	}
	if rec.Namespace != t.ns || rec.ApplySet != t.set.id {
		return nil, nil
	}
	return rec.Objects, nil
}

// writeRecord replaces the record atomically (a temporary file renamed
// over it), mode 0600, confined to the state directory.
func (t *Target) writeRecord(objects map[string]string) error {
	if t.stateDir == "" {
		return nil
	}
	if err := os.Mkdir(t.stateDir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("record the apply: %w", err)
	}
	root, err := os.OpenRoot(t.stateDir)
	if err != nil {
		return fmt.Errorf("record the apply: %w", err)
	}
	defer root.Close()
	data, err := json.MarshalIndent(appliedRecord{FormatVersion: recordFormat, Stack: t.stack, Namespace: t.ns, ApplySet: t.set.id, Objects: objects}, "", "  ")
	if err != nil {
		return err
	}
	tmp := fmt.Sprintf(".%s.%s.tmp", AppliedFile, rand.Text()[:8])
	if err := root.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("record the apply: %w", err)
	}
	if err := root.Rename(tmp, AppliedFile); err != nil {
		_ = root.Remove(tmp)
		return fmt.Errorf("record the apply: %w", err)
	}
	return nil
}

// removeRecord forgets the last apply (after down).
func (t *Target) removeRecord() error {
	if t.stateDir == "" {
		return nil
	}
	root, err := os.OpenRoot(t.stateDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer root.Close()
	if err := root.Remove(AppliedFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

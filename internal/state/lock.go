package state

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	// lockFileName is never removed: deleting a flock'ed file lets a
	// newcomer create and lock a fresh inode while a waiter still holds
	// the old one, and both would then believe they own the stack.
	lockFileName = "lock"
	// lockInfoName is separate from the lock file so it can be replaced
	// atomically; a reader then never sees a half-written holder.
	lockInfoName = "lock.info"
)

// lockPollInterval is how often a waiting Lock retries; short enough that a
// released lock is picked up promptly, long enough not to spin.
var lockPollInterval = 150 * time.Millisecond

// holderInfoGrace bounds how long a refused Lock waits for the holder's
// details. A holder writes lock.info just after taking the flock, so a
// loser that arrives in between would otherwise report an anonymous holder
// (or the details a dead predecessor left behind).
var holderInfoGrace = 2 * time.Second

// LockInfo says who holds (or held) the lock.
type LockInfo struct {
	ID        string    `json:"id"`        // random hex, for a future force-unlock
	Operation string    `json:"operation"` // "up", "down", ...
	Who       string    `json:"who"`       // user@hostname
	PID       int       `json:"pid"`
	Host      string    `json:"host"`
	Created   time.Time `json:"created"`
}

// Lock is a held lock; Unlock releases it.
//
// Info describes this holder, as written to lock.info. Stale is non-nil when
// a previous holder left lock.info behind, that is, it died without
// unlocking; its fields are zero when that file could not be parsed, since
// the fact that a run did not finish matters even without the details.
type Lock struct {
	mu       sync.Mutex
	file     *os.File
	infoPath string

	Info  LockInfo
	Stale *LockInfo
}

// LockedError is returned when another process holds the lock after the timeout.
//
// Holder is the zero LockInfo when the holder had not yet written its
// details (or had just removed them on its way out).
type LockedError struct {
	Holder LockInfo
	Waited time.Duration
}

// Error names the holder and tells the user how to proceed, because the
// usual cause is a concurrent run they can simply wait for.
func (e *LockedError) Error() string {
	var b strings.Builder
	if e.Holder == (LockInfo{}) {
		b.WriteString("stack is locked by another process; holder details not yet written")
	} else {
		who := e.Holder.Who
		if who == "" {
			who = "another process"
		}
		fmt.Fprintf(&b, "stack is locked by %s (pid %d", who, e.Holder.PID)
		if e.Holder.Operation != "" {
			fmt.Fprintf(&b, ", operation %s", e.Holder.Operation)
		}
		b.WriteString(")")
		if !e.Holder.Created.IsZero() {
			fmt.Fprintf(&b, " since %s", e.Holder.Created.UTC().Format(time.RFC3339))
		}
	}
	if e.Waited > 0 {
		fmt.Fprintf(&b, "; still locked after waiting %s", e.Waited.Round(100*time.Millisecond))
		b.WriteString("; another run is in progress: wait for it, or retry with a longer --lock-timeout")
	} else {
		b.WriteString("; another run is in progress: wait for it, or retry with --lock-timeout=5m")
	}
	return b.String()
}

// Lock takes the stack's exclusive lock for operation, waiting up to
// timeout for a concurrent holder to finish (0 fails at once). A read-only
// store neither creates nor tightens the lock file: with none there, no
// run is writing the directory, and the returned Lock holds nothing.
//
// The lock is a kernel flock, not a marker file, so a holder killed even
// with SIGKILL cannot leave it held; lock.info only tells others who holds
// it and tells the next holder (through Stale) that a run did not finish.
func (s *Store) Lock(ctx context.Context, operation string, timeout time.Duration) (*Lock, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	lockPath := filepath.Join(s.dir, lockFileName)
	// OpenFile sets O_CLOEXEC, which matters here: a child such as a
	// long-lived docker process must not inherit the fd and keep the
	// stack locked after we exit. Through the root, and never through a
	// link: a planted lock -> /etc/passwd would otherwise be chmod'ed.
	f, err := s.openLockFile()
	if s.readOnly && errors.Is(err, fs.ErrNotExist) {
		// No run ever locked this directory, so none is writing it now;
		// a reader does not create the lock file.
		return &Lock{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if !s.readOnly {
		if err := f.Chmod(fileMode); err != nil {
			f.Close()
			return nil, fmt.Errorf("secure lock file: %w", err)
		}
	}
	// The details are gathered before taking the flock (os/user may read
	// /etc/passwd) so the window in which we hold it anonymously is short.
	info, err := s.newLockInfo(operation)
	if err != nil {
		f.Close()
		return nil, err
	}

	start := time.Now()
	deadline := start.Add(timeout)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		err := flock(f, syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", lockPath, err)
		}
		remaining := time.Until(deadline)
		if remaining <= 0 {
			f.Close()
			le := &LockedError{Waited: time.Since(start)}
			if timeout <= 0 {
				le.Waited = 0
			}
			if holder := s.liveHolder(ctx); holder != nil {
				le.Holder = *holder
			}
			return nil, le
		}
		// The last wait is trimmed to the deadline so a timeout is
		// honoured to within one poll, not overshot by one.
		wait := min(lockPollInterval, remaining)
		if timer == nil {
			timer = time.NewTimer(wait)
		} else {
			timer.Reset(wait)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-timer.C:
		}
	}

	l := &Lock{file: f, infoPath: filepath.Join(s.dir, lockInfoName)}
	// A holder removes lock.info before releasing the flock, so finding it
	// while we hold the flock means the previous holder died mid-run.
	stale, err := s.readLockInfo()
	switch {
	case errors.Is(err, errCorruptLockInfo):
		l.Stale = &LockInfo{}
	case err != nil:
		l.release()
		return nil, err
	default:
		l.Stale = stale
	}
	l.Info = info
	l.Info.Created = time.Now().UTC().Truncate(time.Second) // held since now, not since the first attempt
	data, err := json.MarshalIndent(l.Info, "", "  ")
	if err != nil {
		l.release()
		return nil, err
	}
	// Not synced: lock.info is advisory, and an fsync stalled behind other
	// I/O would keep others from learning who holds the lock. After a
	// crash a torn file reads as corrupt, which still counts as stale.
	if err := s.writeLockInfo(append(data, '\n')); err != nil {
		l.release()
		return nil, fmt.Errorf("write %s: %w", lockInfoName, err)
	}
	return l, nil
}

// openLockFile opens (creating) the lock file inside the state directory.
func (s *Store) openLockFile() (*os.File, error) {
	if !s.exists {
		return nil, fmt.Errorf("state directory %s does not exist", s.dir)
	}
	root, err := os.OpenRoot(s.dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	if err := noSymlinks(root, lockFileName); err != nil {
		return nil, err
	}
	if s.readOnly {
		// flock needs no write access.
		return root.Open(lockFileName)
	}
	return root.OpenFile(lockFileName, os.O_RDWR|os.O_CREATE, fileMode)
}

// writeLockInfo replaces lock.info inside the state directory.
func (s *Store) writeLockInfo(data []byte) error {
	root, err := os.OpenRoot(s.dir)
	if err != nil {
		return err
	}
	defer root.Close()
	_, err = writeIn(root, lockInfoName, data, fileMode, dirMode, false)
	return err
}

// Unlock releases the lock. It is safe to call more than once, so callers
// can both defer it and call it explicitly to report its error.
func (l *Lock) Unlock() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.file == nil {
		return nil
	}
	// lock.info goes first: once the flock is released a newcomer may
	// take it, and must not mistake our leftover info for a crashed run.
	var rmErr error
	if err := os.Remove(l.infoPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		rmErr = fmt.Errorf("remove %s: %w", lockInfoName, err)
	}
	return errors.Join(rmErr, l.release())
}

// release drops the flock by closing the fd; closing is enough because the
// kernel ties a flock to the open file description.
func (l *Lock) release() error {
	f := l.file
	l.file = nil
	if err := f.Close(); err != nil {
		return fmt.Errorf("release lock: %w", err)
	}
	return nil
}

var errCorruptLockInfo = errors.New("corrupt lock info")

// liveHolder returns the details of whoever holds the flock now, polling for
// up to holderInfoGrace while lock.info is missing, unreadable or left by a
// process on this host that no longer exists. It returns nil when no such
// details appear in time.
func (s *Store) liveHolder(ctx context.Context) *LockInfo {
	deadline := time.Now().Add(holderInfoGrace)
	host, _ := os.Hostname()
	for {
		info, err := s.readLockInfo()
		if err == nil && info != nil && (info.Host != host || processExists(info.PID)) {
			return info
		}
		if time.Now().After(deadline) {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// processExists reports whether pid names a process on this host; EPERM
// means it exists but belongs to someone else.
func processExists(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// readLockInfo returns nil, nil when there is no lock.info, so callers can
// tell "nobody left details" from a real read failure.
func (s *Store) readLockInfo() (*LockInfo, error) {
	root, err := os.OpenRoot(s.dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	if err := noSymlinks(root, lockInfoName); err != nil {
		return nil, err
	}
	b, err := root.ReadFile(lockInfoName)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", lockInfoName, err)
	}
	var info LockInfo
	if err := json.Unmarshal(b, &info); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", errCorruptLockInfo, lockInfoName, err)
	}
	return &info, nil
}

// newLockInfo describes this process as a holder; Lock stamps Created once
// it holds the lock.
func (s *Store) newLockInfo(operation string) (LockInfo, error) {
	id := make([]byte, 8)
	if _, err := s.rand(id); err != nil {
		return LockInfo{}, fmt.Errorf("generate lock id: %w", err)
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	return LockInfo{
		ID:        hex.EncodeToString(id),
		Operation: operation,
		Who:       currentUser() + "@" + host,
		PID:       os.Getpid(),
		Host:      host,
	}, nil
}

// currentUser falls back to $USER and then the uid because os/user can fail
// in minimal containers that have no passwd entry for the running uid.
func currentUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return strconv.Itoa(os.Getuid())
}

// flock goes through SyscallConn rather than Fd so the file is not switched
// to blocking mode, and retries EINTR, which a signal during the call can
// cause even with LOCK_NB.
func flock(f *os.File, how int) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) {
		for {
			ferr = syscall.Flock(int(fd), how)
			if !errors.Is(ferr, syscall.EINTR) {
				return
			}
		}
	}); err != nil {
		return err
	}
	return ferr
}

package state

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lockHolderEnv turns TestHelperLockHolder into a lock-holding child
// process; its value is the state directory to lock.
const lockHolderEnv = "ORCHESTRATOR_TEST_LOCK_HOLDER_DIR"

func openStore(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir)
	require.NoError(t, err)
	return s
}

func readInfoFile(t *testing.T, dir string) LockInfo {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, lockInfoName))
	require.NoError(t, err)
	var info LockInfo
	require.NoError(t, json.Unmarshal(b, &info))
	return info
}

func requireMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, want, st.Mode().Perm(), path)
}

func TestLockAcquireWritesInfoAndUnlockRemovesIt(t *testing.T) {
	dir := filepath.Join(t.TempDir(), DirName)
	s := openStore(t, dir)

	before := time.Now().UTC().Truncate(time.Second)
	l, err := s.Lock(context.Background(), "up", 0)
	require.NoError(t, err)
	assert.Nil(t, l.Stale, "a clean directory has no stale holder")

	host, err := os.Hostname()
	require.NoError(t, err)
	assert.Equal(t, "up", l.Info.Operation)
	assert.Equal(t, os.Getpid(), l.Info.PID)
	assert.Equal(t, host, l.Info.Host)
	assert.Equal(t, currentUser()+"@"+host, l.Info.Who)
	assert.Regexp(t, `^[0-9a-f]{16}$`, l.Info.ID)
	assert.Equal(t, time.UTC, l.Info.Created.Location())
	assert.Equal(t, l.Info.Created, l.Info.Created.Truncate(time.Second))
	assert.False(t, l.Info.Created.Before(before))

	// What others see on disk is exactly the holder's Info.
	onDisk := readInfoFile(t, dir)
	assert.Equal(t, l.Info.ID, onDisk.ID)
	assert.Equal(t, l.Info.PID, onDisk.PID)
	assert.True(t, l.Info.Created.Equal(onDisk.Created))
	requireMode(t, filepath.Join(dir, lockInfoName), 0o600)
	requireMode(t, filepath.Join(dir, lockFileName), 0o600)

	require.NoError(t, l.Unlock())
	assert.NoFileExists(t, filepath.Join(dir, lockInfoName))
	assert.FileExists(t, filepath.Join(dir, lockFileName), "the lock file itself is kept")
	require.NoError(t, l.Unlock(), "a second Unlock is a no-op")

	// Released for real: a new lock is taken at once, and is not stale.
	l2, err := s.Lock(context.Background(), "down", 0)
	require.NoError(t, err)
	assert.Nil(t, l2.Stale)
	assert.NotEqual(t, l.Info.ID, l2.Info.ID)
	require.NoError(t, l2.Unlock())
}

func TestLockTightensExistingLockFileMode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), DirName)
	s := openStore(t, dir)
	require.NoError(t, os.WriteFile(filepath.Join(dir, lockFileName), nil, 0o644))
	require.NoError(t, os.Chmod(filepath.Join(dir, lockFileName), 0o644))

	l, err := s.Lock(context.Background(), "up", 0)
	require.NoError(t, err)
	defer l.Unlock()
	requireMode(t, filepath.Join(dir, lockFileName), 0o600)
}

func TestLockHeldElsewhereFailsFast(t *testing.T) {
	dir := filepath.Join(t.TempDir(), DirName)
	first := openStore(t, dir)
	second := openStore(t, dir)

	held, err := first.Lock(context.Background(), "up", 0)
	require.NoError(t, err)
	defer held.Unlock()

	start := time.Now()
	l, err := second.Lock(context.Background(), "down", 0)
	elapsed := time.Since(start)
	require.Error(t, err)
	assert.Nil(t, l)
	assert.Less(t, elapsed, time.Second, "timeout 0 must not wait")

	var le *LockedError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, held.Info.PID, le.Holder.PID)
	assert.Equal(t, "up", le.Holder.Operation)
	assert.Equal(t, held.Info.ID, le.Holder.ID)
	assert.Zero(t, le.Waited)
	msg := err.Error()
	assert.Contains(t, msg, fmt.Sprintf("locked by %s (pid %d, operation up) since %s",
		held.Info.Who, os.Getpid(), held.Info.Created.Format(time.RFC3339)))
	assert.Contains(t, msg, "--lock-timeout")

	// The failed attempt must not have touched the holder's details.
	assert.Equal(t, held.Info.ID, readInfoFile(t, dir).ID)
}

func TestLockedErrorMessage(t *testing.T) {
	since := time.Date(2026, 11, 27, 0, 12, 3, 0, time.UTC)
	holder := LockInfo{ID: "00", Operation: "up", Who: "root@vps1", PID: 4242, Host: "vps1", Created: since}
	tests := []struct {
		name string
		err  LockedError
		want string
	}{
		{
			name: "fail fast",
			err:  LockedError{Holder: holder},
			want: "stack is locked by root@vps1 (pid 4242, operation up) since 2026-11-27T00:12:03Z; another run is in progress: wait for it, or retry with --lock-timeout=5m",
		},
		{
			name: "after waiting",
			err:  LockedError{Holder: holder, Waited: 5 * time.Second},
			want: "stack is locked by root@vps1 (pid 4242, operation up) since 2026-11-27T00:12:03Z; still locked after waiting 5s; another run is in progress: wait for it, or retry with a longer --lock-timeout",
		},
		{
			name: "holder unknown",
			err:  LockedError{},
			want: "stack is locked by another process; holder details not yet written; another run is in progress: wait for it, or retry with --lock-timeout=5m",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.err.Error())
		})
	}
}

func TestLockHolderDetailsNotYetWritten(t *testing.T) {
	host, err := os.Hostname()
	require.NoError(t, err)
	live := LockInfo{ID: "feedfacefeedface", Operation: "up", Who: "root@" + host, PID: os.Getpid(), Host: host,
		Created: time.Date(2026, 11, 27, 0, 12, 3, 0, time.UTC)}
	dead := live
	dead.ID, dead.PID = "0123456789abcdef", deadPID(t)
	tests := []struct {
		name       string
		leftover   *LockInfo // lock.info present when the loser arrives
		writeAfter time.Duration
		grace      time.Duration // generous where details come, so a slow machine cannot fail it
		want       LockInfo
	}{
		{name: "details written a moment after the flock", writeAfter: 200 * time.Millisecond, grace: 10 * time.Second, want: live},
		{name: "dead predecessor's details replaced", leftover: &dead, writeAfter: 200 * time.Millisecond, grace: 10 * time.Second, want: live},
		{name: "never written", grace: 300 * time.Millisecond, want: LockInfo{}},
		{name: "only a dead predecessor's details", leftover: &dead, grace: 300 * time.Millisecond, want: LockInfo{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func(g time.Duration) { holderInfoGrace = g }(holderInfoGrace)
			holderInfoGrace = tt.grace
			dir := filepath.Join(t.TempDir(), DirName)
			s := openStore(t, dir)
			writeInfo := func(info LockInfo) {
				b, err := json.Marshal(info)
				require.NoError(t, err)
				require.NoError(t, writeAtomic(filepath.Join(dir, lockInfoName), b, 0o600))
			}
			if tt.leftover != nil {
				writeInfo(*tt.leftover)
			}
			// A holder that has taken the flock but not yet written lock.info.
			f, err := os.OpenFile(filepath.Join(dir, lockFileName), os.O_RDWR|os.O_CREATE, 0o600)
			require.NoError(t, err)
			defer f.Close()
			require.NoError(t, flock(f, syscall.LOCK_EX|syscall.LOCK_NB))
			if tt.writeAfter > 0 {
				stop := time.AfterFunc(tt.writeAfter, func() { writeInfo(live) })
				defer stop.Stop()
			}

			start := time.Now()
			_, err = s.Lock(context.Background(), "up", 0)
			var le *LockedError
			require.ErrorAs(t, err, &le)
			assert.Less(t, time.Since(start), holderInfoGrace+5*time.Second, "the grace is bounded")
			le.Holder.Created, tt.want.Created = time.Time{}, time.Time{}
			assert.Equal(t, tt.want, le.Holder)
			if tt.want == (LockInfo{}) {
				assert.Contains(t, err.Error(), "locked by another process; holder details not yet written")
			} else {
				assert.Contains(t, err.Error(), fmt.Sprintf("locked by %s (pid %d, operation up)", live.Who, live.PID))
			}
		})
	}
}

// deadPID returns the pid of a process that has exited and been reaped.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	require.NoError(t, cmd.Run())
	return cmd.Process.Pid
}

func TestLockWaitsWithTimeout(t *testing.T) {
	tests := []struct {
		name       string
		releaseIn  time.Duration // 0: never released
		timeout    time.Duration
		wantLocked bool
	}{
		{name: "acquired once released", releaseIn: 300 * time.Millisecond, timeout: 10 * time.Second},
		{name: "times out when never released", timeout: 500 * time.Millisecond, wantLocked: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), DirName)
			held, err := openStore(t, dir).Lock(context.Background(), "up", 0)
			require.NoError(t, err)
			defer held.Unlock()
			if tt.releaseIn > 0 {
				stop := time.AfterFunc(tt.releaseIn, func() { _ = held.Unlock() })
				defer stop.Stop()
			}

			start := time.Now()
			l, err := openStore(t, dir).Lock(context.Background(), "down", tt.timeout)
			elapsed := time.Since(start)

			if tt.wantLocked {
				var le *LockedError
				require.ErrorAs(t, err, &le)
				assert.Equal(t, held.Info.ID, le.Holder.ID)
				assert.GreaterOrEqual(t, le.Waited, tt.timeout)
				assert.Less(t, le.Waited, tt.timeout+2*time.Second, "timeout overshot")
				assert.Contains(t, err.Error(), "still locked after waiting")
				return
			}
			require.NoError(t, err)
			defer l.Unlock()
			assert.GreaterOrEqual(t, elapsed, tt.releaseIn, "cannot have acquired before the release")
			assert.Less(t, elapsed, tt.timeout, "must not wait for the whole timeout")
			assert.Nil(t, l.Stale, "a clean unlock leaves nothing stale")
			assert.Equal(t, "down", readInfoFile(t, dir).Operation)
		})
	}
}

func TestLockContextCancellation(t *testing.T) {
	tests := []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{
			name: "cancelled while waiting",
			ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				// Whether this lands before or during the wait, the
				// outcome is the same, so it is not a race.
				time.AfterFunc(300*time.Millisecond, cancel)
				return ctx, cancel
			},
			want: context.Canceled,
		},
		{
			name: "cancelled before the call",
			ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx, cancel
			},
			want: context.Canceled,
		},
		{
			name: "context deadline before lock timeout",
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 300*time.Millisecond)
			},
			want: context.DeadlineExceeded,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), DirName)
			held, err := openStore(t, dir).Lock(context.Background(), "up", 0)
			require.NoError(t, err)
			defer held.Unlock()

			ctx, cancel := tt.ctx()
			defer cancel()
			start := time.Now()
			l, err := openStore(t, dir).Lock(ctx, "down", time.Minute)
			assert.Nil(t, l)
			require.ErrorIs(t, err, tt.want)
			assert.Less(t, time.Since(start), 30*time.Second, "cancellation must end the wait")
		})
	}
}

func TestLockStaleInfoFromDeadHolder(t *testing.T) {
	dead := LockInfo{ID: "0123456789abcdef", Operation: "up", Who: "root@vps1", PID: 4242, Host: "vps1",
		Created: time.Date(2026, 11, 27, 0, 12, 3, 0, time.UTC)}
	deadJSON, err := json.Marshal(dead)
	require.NoError(t, err)
	tests := []struct {
		name      string
		leftover  string
		wantStale *LockInfo
	}{
		{name: "readable", leftover: string(deadJSON), wantStale: &dead},
		{name: "corrupt", leftover: `{"pid": 42`, wantStale: &LockInfo{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), DirName)
			s := openStore(t, dir)
			require.NoError(t, os.WriteFile(filepath.Join(dir, lockInfoName), []byte(tt.leftover), 0o600))

			l, err := s.Lock(context.Background(), "down", 0)
			require.NoError(t, err)
			defer l.Unlock()
			require.NotNil(t, l.Stale)
			assert.True(t, l.Stale.Created.Equal(tt.wantStale.Created))
			l.Stale.Created, tt.wantStale.Created = time.Time{}, time.Time{}
			assert.Equal(t, *tt.wantStale, *l.Stale)
			assert.Equal(t, l.Info.ID, readInfoFile(t, dir).ID, "lock.info now names the new holder")
		})
	}
}

// TestHelperLockHolder is not a test: run as a child process with
// lockHolderEnv set, it takes the lock, says "locked", and holds it until
// killed or until its stdin closes (so it never outlives a failed parent).
func TestHelperLockHolder(t *testing.T) {
	dir := os.Getenv(lockHolderEnv)
	if dir == "" {
		return
	}
	s, err := Open(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	l, err := s.Lock(context.Background(), "up", 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	fmt.Println("locked")
	_, _ = io.Copy(io.Discard, os.Stdin)
	_ = l.Unlock()
	os.Exit(0)
}

func TestLockReleasedWhenHolderIsKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := filepath.Join(t.TempDir(), DirName)
	s := openStore(t, dir)

	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperLockHolder$", "-test.count=1", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), lockHolderEnv+"="+dir)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	waited := false
	defer func() {
		if !waited {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	childPID := cmd.Process.Pid

	// Wait for "locked" with a deadline instead of sleeping.
	lockedc := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == "locked" {
				lockedc <- nil
				_, _ = io.Copy(io.Discard, stdout)
				return
			}
		}
		lockedc <- fmt.Errorf("helper exited before locking (scan error: %v)", sc.Err())
	}()
	select {
	case err := <-lockedc:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("helper did not report \"locked\" within 30s")
	}

	_, err = s.Lock(context.Background(), "down", 0)
	var le *LockedError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, childPID, le.Holder.PID)
	assert.Equal(t, "up", le.Holder.Operation)
	assert.Contains(t, err.Error(), "pid "+strconv.Itoa(childPID))

	// SIGKILL gives the child no chance to unlock: only the kernel can
	// release the flock, and lock.info stays behind.
	require.NoError(t, cmd.Process.Kill())
	waitErr := cmd.Wait()
	waited = true
	var exitErr *exec.ExitError
	require.True(t, errors.As(waitErr, &exitErr), "wait: %v", waitErr)
	status, ok := exitErr.Sys().(syscall.WaitStatus)
	require.True(t, ok)
	require.True(t, status.Signaled() && status.Signal() == syscall.SIGKILL, "child was not killed: %v", waitErr)
	assert.FileExists(t, filepath.Join(dir, lockInfoName))

	l, err := s.Lock(context.Background(), "down", 0)
	require.NoError(t, err, "a killed holder must not keep the lock")
	defer l.Unlock()
	require.NotNil(t, l.Stale)
	assert.Equal(t, childPID, l.Stale.PID)
	assert.Equal(t, "up", l.Stale.Operation)
	assert.Equal(t, le.Holder.ID, l.Stale.ID)
	assert.Equal(t, os.Getpid(), readInfoFile(t, dir).PID)
}

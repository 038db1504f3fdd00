package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// promptExit is how long the binary may take to end after TERM or INT.
const promptExit = 2 * time.Second

// TestSignalEndsARunWhateverItDoes builds the binary and interrupts it
// while it waits for its spec: a FIFO nobody writes to (the open blocks), a
// FIFO whose writer sends nothing (the read blocks) and /dev/zero (endless).
// It must end within promptExit of the signal with exit code 1 and
// "Interrupted.". Before the fix it read on until the kernel killed it for
// memory, or forever.
func TestSignalEndsARunWhateverItDoes(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "orchestrator")
	build := exec.Command("go", "build", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)

	tests := []struct {
		name   string
		sig    syscall.Signal
		writer bool   // a writer holds the FIFO open and sends nothing
		file   string // else a FIFO
	}{
		{name: "FIFO without a writer, TERM", sig: syscall.SIGTERM},
		{name: "FIFO with a silent writer, INT", sig: syscall.SIGINT, writer: true},
		{name: "FIFO with a silent writer, TERM", sig: syscall.SIGTERM, writer: true},
		{name: "/dev/zero, TERM", sig: syscall.SIGTERM, file: "/dev/zero"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			file := tt.file
			if file == "" {
				file = filepath.Join(dir, "stack.yaml")
				require.NoError(t, syscall.Mkfifo(file, 0o600))
				if tt.writer {
					w, err := os.OpenFile(file, os.O_RDWR, 0)
					require.NoError(t, err)
					defer w.Close()
				}
			}
			cmd := exec.Command(bin, "validate", "-f", file)
			cmd.Dir = dir
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			require.NoError(t, cmd.Start())
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			defer func() {
				_ = cmd.Process.Kill()
			}()

			// Signal once the binary waits on its spec: it has opened it, or
			// its open waits for a FIFO writer. Its handler is installed by
			// then (Main does that first), so the default action, which
			// would end it and prove nothing, is out of the way.
			deadline := time.Now().Add(10 * time.Second)
			for !waitsOn(cmd.Process.Pid, file) {
				select {
				case err := <-exited:
					// /dev/zero may be refused before the signal: fine,
					// the run ended by itself.
					require.Equal(t, "/dev/zero", tt.file, "exited before the signal: %v\n%s", err, stderr.String())
					return
				default:
				}
				require.True(t, time.Now().Before(deadline), "the binary never opened %s", file)
				time.Sleep(10 * time.Millisecond)
			}
			require.NoError(t, cmd.Process.Signal(tt.sig))
			sent := time.Now()
			select {
			case err := <-exited:
				took := time.Since(sent)
				assert.Less(t, took, promptExit)
				var ee *exec.ExitError
				require.True(t, errors.As(err, &ee), "exit: %v", err)
				if tt.file == "" {
					assert.Equal(t, 1, ee.ExitCode(), "stderr: %s", stderr.String())
					assert.Equal(t, "Interrupted.\n", stderr.String())
				}
			case <-time.After(promptExit):
				t.Fatalf("still running %s after %s", promptExit, tt.sig)
			}
		})
	}
}

// waitsOn reports whether process pid has file open, or has a thread
// whose open waits for a FIFO's writer.
func waitsOn(pid int, file string) bool {
	proc := "/proc/" + strconv.Itoa(pid)
	fds, _ := os.ReadDir(proc + "/fd")
	for _, fd := range fds {
		if target, err := os.Readlink(proc + "/fd/" + fd.Name()); err == nil && target == file {
			return true
		}
	}
	tasks, _ := os.ReadDir(proc + "/task")
	for _, task := range tasks {
		if b, err := os.ReadFile(proc + "/task/" + task.Name() + "/wchan"); err == nil && string(b) == "wait_for_partner" {
			return true
		}
	}
	return false
}

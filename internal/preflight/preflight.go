// Package preflight checks a host before anything is applied: is the
// engine there, and does the host have the memory, disk and kernel
// settings the enabled components need. Every failure says the exact
// command or change that fixes it.
package preflight

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/aipairpro/orchestrator/internal/model"
)

// MinMaxMapCount is Elasticsearch's bootstrap-check minimum for
// vm.max_map_count.
const MinMaxMapCount = 262144

// Facts are what is known about the host; -1 means unknown (for example
// the free disk of a remote engine, whose filesystems this process cannot
// read).
type Facts struct {
	MemTotal int64
	// MemAvailable is the kernel's estimate of memory free for new work
	// (MemAvailable in /proc/meminfo); 0 or -1 when unknown.
	MemAvailable int64
	DiskFree     int64
	DiskPath     string
	// MaxMapCount is the host's vm.max_map_count, read from /proc on a
	// local engine and by a short-lived container on a remote one.
	MaxMapCount int
	// MaxMapCountUnread says why MaxMapCount is unknown.
	MaxMapCountUnread string
}

// Needs are what the deployment asks of the host.
type Needs struct {
	// Memory is the sum of the services' memory limits times replicas.
	Memory int64
	// Disk is the space the volumes ask for plus room for images.
	Disk int64
	// Elasticsearch lists the services that run Elasticsearch.
	Elasticsearch []string
}

// imageRoom is disk kept for images and logs on top of the volumes.
const imageRoom = 10 << 30

// NeedsOf sums what a deployment needs.
func NeedsOf(d *model.Deployment) Needs {
	n := Needs{Disk: imageRoom}
	for _, s := range d.Services {
		r := s.Replicas
		if r < 1 {
			r = 1
		}
		n.Memory += s.MemoryBytes * int64(r)
		if strings.Contains(s.Name, "elasticsearch") {
			n.Elasticsearch = append(n.Elasticsearch, s.Name)
		}
	}
	for _, v := range d.Volumes {
		n.Disk += v.SizeBytes
	}
	return n
}

// Problem is one failed check.
type Problem struct {
	Check   string `json:"check"`
	Summary string `json:"summary"`
	Fix     string `json:"fix"`
	// Warning problems are reported but do not stop the run.
	Warning bool `json:"warning,omitempty"`
}

// Check compares facts with needs.
func Check(f Facts, n Needs) []Problem {
	var ps []Problem
	if f.MemTotal > 0 && n.Memory > f.MemTotal {
		ps = append(ps, Problem{Check: "memory",
			Summary: fmt.Sprintf("the enabled services may use up to %s of memory (the sum of their limits), the host has %s", gib(n.Memory), gib(f.MemTotal)),
			Fix:     "use a host with more memory, lower limits with overrides.<service>.resources.memory, or disable components"})
	}
	if f.MemAvailable > 0 && n.Memory > f.MemAvailable && (f.MemTotal <= 0 || n.Memory <= f.MemTotal) {
		// A warning, not an error: on a re-up the stack's own running
		// containers hold part of the memory they are counted against.
		ps = append(ps, Problem{Check: "free memory", Warning: true,
			Summary: fmt.Sprintf("%s of memory is available now; the enabled services may use up to %s", gib(f.MemAvailable), gib(n.Memory)),
			Fix:     "stop what else runs on the host, or lower limits with overrides.<service>.resources.memory"})
	}
	if f.DiskFree >= 0 && n.Disk > f.DiskFree {
		ps = append(ps, Problem{Check: "disk",
			Summary: fmt.Sprintf("%s has %s free; the volumes ask for %s plus %s for images", f.DiskPath, gib(f.DiskFree), gib(n.Disk-imageRoom), gib(imageRoom)),
			Fix:     fmt.Sprintf("free space on %s (e.g. `docker system prune`), or lower database.storage", f.DiskPath)})
	}
	if len(n.Elasticsearch) > 0 {
		switch {
		case f.MaxMapCount < 0:
			why := f.MaxMapCountUnread
			if why == "" {
				why = "unknown"
			}
			ps = append(ps, Problem{Check: "vm.max_map_count", Warning: true,
				Summary: "vm.max_map_count could not be read (" + why + "); Elasticsearch (" + strings.Join(n.Elasticsearch, ", ") + ") needs at least 262144",
				Fix:     "on the engine's host: sysctl vm.max_map_count; if it is lower: " + maxMapCountFix})
		case f.MaxMapCount < MinMaxMapCount:
			ps = append(ps, Problem{Check: "vm.max_map_count",
				Summary: fmt.Sprintf("vm.max_map_count is %d; Elasticsearch (%s) needs at least %d", f.MaxMapCount, strings.Join(n.Elasticsearch, ", "), MinMaxMapCount),
				Fix:     maxMapCountFix})
		}
	}
	return ps
}

// maxMapCountFix raises vm.max_map_count now and at every boot.
const maxMapCountFix = "sudo sysctl -w vm.max_map_count=262144 && echo vm.max_map_count=262144 | sudo tee /etc/sysctl.d/99-elasticsearch.conf"

func gib(b int64) string { return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30)) }

// LocalFacts reads what can be read on this machine: available memory,
// free disk under the engine's root directory and vm.max_map_count. For a
// remote engine they stay unknown (the caller reads vm.max_map_count
// through the engine).
func LocalFacts(memTotal int64, rootDir string, local bool) Facts {
	f := Facts{MemTotal: memTotal, MemAvailable: -1, DiskFree: -1, DiskPath: rootDir, MaxMapCount: -1}
	if !local {
		f.MaxMapCountUnread = "the engine is remote"
		return f
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		f.MemAvailable = memAvailable(string(b))
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(rootDir, &st); err == nil {
		f.DiskFree = int64(st.Bavail) * int64(st.Bsize)
	}
	if b, err := os.ReadFile("/proc/sys/vm/max_map_count"); err != nil {
		f.MaxMapCountUnread = err.Error()
	} else if v, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
		f.MaxMapCount = v
	} else {
		f.MaxMapCountUnread = "unexpected /proc/sys/vm/max_map_count: " + err.Error()
	}
	return f
}

// memAvailable reads MemAvailable (in kB) from /proc/meminfo text; 0 or -1 when
// absent.
func memAvailable(meminfo string) int64 {
	for _, line := range strings.Split(meminfo, "\n") {
		if rest, ok := strings.CutPrefix(line, "MemAvailable:"); ok {
			if kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64); err == nil {
				return kb << 10
			}
		}
	}
	return -1
}

package compose

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"
)

// HelperLabel marks the short-lived containers orchestrator runs to read
// facts of the engine's host and of the stack's volumes. The engine
// removes them when they exit.
const HelperLabel = "dev.orchestrator.helper"

// helperTimeout bounds one helper container, start to removal.
const helperTimeout = 2 * time.Minute

// helperOutputLimit caps what is kept of a helper's output.
const helperOutputLimit = 64 << 10

// helper is one short-lived container: an image the stack already uses,
// with its entrypoint replaced, no network, and the engine's AutoRemove.
type helper struct {
	// Purpose is the value of HelperLabel, e.g. "pg-version".
	Purpose    string
	Image      string
	Entrypoint []string
	User       string
	Mounts     []mount.Mount
}

// runHelper runs h to completion and returns its standard output. The
// container is removed whatever happens: by the engine when it exits, and
// by a forced removal here when this run fails or is interrupted first.
func (t *Target) runHelper(ctx context.Context, h helper) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, helperTimeout)
	defer cancel()
	eng := t.Client()
	created, err := eng.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config: &container.Config{
			Image:           h.Image,
			Entrypoint:      h.Entrypoint,
			User:            h.User,
			Labels:          map[string]string{HelperLabel: h.Purpose},
			AttachStdout:    true,
			AttachStderr:    true,
			NetworkDisabled: true,
		},
		HostConfig: &container.HostConfig{AutoRemove: true, NetworkMode: "none", Mounts: h.Mounts},
	})
	if err != nil {
		return "", fmt.Errorf("create a helper container from %s: %w", h.Image, err)
	}
	id := created.ID
	defer func() {
		// Not the run's context: an interrupted run must still clean up.
		// It fails harmlessly when AutoRemove was first.
		rmCtx, rmCancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer rmCancel()
		_, _ = eng.ContainerRemove(rmCtx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	}()
	// Attached before it starts, so no output is lost, and waited on until
	// the engine has removed it, as `docker run --rm` does.
	att, err := eng.ContainerAttach(ctx, id, client.ContainerAttachOptions{Stream: true, Stdout: true, Stderr: true})
	if err != nil {
		return "", fmt.Errorf("attach to a helper container: %w", err)
	}
	defer att.Close()
	stop := context.AfterFunc(ctx, att.Close)
	defer stop()
	wait := eng.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: container.WaitConditionRemoved})
	if _, err := eng.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		return "", fmt.Errorf("start a helper container from %s: %w", h.Image, err)
	}
	var stdout, stderr limitedBuffer
	copied := make(chan error, 1)
	go func() {
		_, err := stdcopy.StdCopy(&stdout, &stderr, att.Reader)
		copied <- err
	}()
	var code int64
	select {
	case res := <-wait.Result:
		code = res.StatusCode
	case err := <-wait.Error:
		return "", fmt.Errorf("wait for a helper container: %w", err)
	}
	select {
	case err := <-copied:
		if err != nil && !errors.Is(err, io.EOF) && ctx.Err() == nil {
			return "", fmt.Errorf("read a helper container's output: %w", err)
		}
	case <-ctx.Done():
		return "", ctx.Err()
	}
	if code != 0 {
		return stdout.String(), fmt.Errorf("helper container from %s exited with code %d: %s", h.Image, code, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// limitedBuffer keeps the first helperOutputLimit bytes written to it.
type limitedBuffer struct{ bytes.Buffer }

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := helperOutputLimit - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// presentImages returns, in order and once each, the refs that are on the
// engine (helpers never pull).
func (t *Target) presentImages(ctx context.Context, refs []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, ref := range refs {
		if ref == "" || seen[ref] {
			continue
		}
		seen[ref] = true
		if _, err := t.Client().ImageInspect(ctx, ref); err == nil {
			out = append(out, ref)
		}
	}
	return out
}

// serviceImages lists the images of the named services first, then those of
// every other service of the project, by service name.
func serviceImages(p *types.Project, first []string) []string {
	var out []string
	for _, name := range first {
		if svc, ok := p.Services[name]; ok {
			out = append(out, svc.Image)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(p.Services)) {
		out = append(out, p.Services[name].Image)
	}
	return out
}

// maxHelperTries bounds how many images a helper is tried with (one may
// lack the tool it runs).
const maxHelperTries = 3

// MaxMapCount reads vm.max_map_count of the engine's host, whatever the
// engine's address: a container sees the host's value (the setting is not
// namespaced), so this works on a remote engine too. It runs `cat` in a
// short-lived container of an image the stack already uses and that is on
// the engine, preferring those of services (the Elasticsearch ones).
func (t *Target) MaxMapCount(ctx context.Context, p *types.Project, services []string) (int, error) {
	images := t.presentImages(ctx, serviceImages(p, services))
	if len(images) == 0 {
		return -1, fmt.Errorf("none of the stack's images is on the engine yet to read it with (up pulls them; run up again after)")
	}
	var errs []error
	for _, image := range images[:min(len(images), maxHelperTries)] {
		out, err := t.runHelper(ctx, helper{Purpose: "max-map-count", Image: image, Entrypoint: []string{"cat", "/proc/sys/vm/max_map_count"}})
		if err != nil {
			if ctx.Err() != nil {
				return -1, ctx.Err()
			}
			errs = append(errs, err)
			continue
		}
		v, err := strconv.Atoi(strings.TrimSpace(out))
		if err != nil {
			return -1, fmt.Errorf("unexpected /proc/sys/vm/max_map_count %q", strings.TrimSpace(out))
		}
		return v, nil
	}
	return -1, errors.Join(errs...)
}

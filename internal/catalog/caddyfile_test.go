package catalog

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"debug/buildinfo"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/aipairpro/orchestrator/internal/model"
)

// caddyVersion is the Caddy of the proxy image (caddy:2.10.2-alpine in
// templates/catalog/catalog.yaml); hack/testenv/caddy.sh builds the same one.
const caddyVersion = "v2.10.2"

// firstByteBudget is how long a stream's headers, and then its first event,
// may take through the proxy. Locally they take milliseconds; a proxy that
// buffers holds them until the upstream writes more or ends the response,
// which the upstream here never does while the client listens.
const firstByteBudget = time.Second

// TestCaddyfileOnRealCaddy runs the rendered Caddyfile on a real Caddy, the
// version the proxy image pins, in front of a real upstream on 127.0.0.1:
// streams (server-sent events, and any response the upstream asks proxies
// not to buffer) reach the client at once and unencoded while the upstream
// holds them open, and ordinary pages are still compressed. Kestra's live
// logs and executions are such streams (caddyserver/caddy#6293). It never
// skips: without the Caddy binary nothing is proven, so it fails.
func TestCaddyfileOnRealCaddy(t *testing.T) {
	up := newStreamingUpstream(t)
	proxy := startCaddy(t, up.port)

	const browserAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	tests := []struct {
		name           string
		contentType    string
		accept         string
		acceptEncoding string
		// stream: the upstream flushes its headers, sends one chunk (an
		// event) and holds the response open until the client leaves.
		stream bool
		// quietStart: the stream's first event is sent only once the client
		// has its headers, like a log stream of an execution that has not
		// logged yet; EventSource opens on the headers alone.
		quietStart bool
		// noBuffering: the upstream sends X-Accel-Buffering: no.
		noBuffering bool
		firstChunk  int    // size of the stream's first chunk or of the page, in bytes
		wantEncoded string // the Content-Encoding the client must get; "" for none
	}{
		{name: "event stream, quiet until the first event", contentType: "text/event-stream",
			accept: "text/event-stream", acceptEncoding: "gzip, zstd", stream: true, quietStart: true, firstChunk: 64},
		{name: "event stream, first event larger than encode's minimum length", contentType: "text/event-stream",
			accept: "text/event-stream", acceptEncoding: "gzip, zstd", stream: true, firstChunk: 4096},
		{name: "event stream with charset, client without Accept", contentType: "text/event-stream; charset=utf-8",
			accept: "*/*", acceptEncoding: "gzip, zstd", stream: true, firstChunk: 4096},
		{name: "json stream marked X-Accel-Buffering no", contentType: "application/json",
			accept: "*/*", acceptEncoding: "gzip, zstd", stream: true, noBuffering: true, firstChunk: 4096},

		{name: "html page", contentType: "text/html; charset=utf-8", accept: browserAccept, acceptEncoding: "gzip", firstChunk: 8192, wantEncoded: "gzip"},
		{name: "html page, zstd when the client takes either", contentType: "text/html; charset=utf-8", accept: browserAccept, acceptEncoding: "gzip, zstd", firstChunk: 8192, wantEncoded: "zstd"},
		{name: "json", contentType: "application/json", accept: "application/json", acceptEncoding: "gzip", firstChunk: 8192, wantEncoded: "gzip"},
		{name: "javascript", contentType: "text/javascript; charset=utf-8", accept: "*/*", acceptEncoding: "gzip", firstChunk: 8192, wantEncoded: "gzip"},
		{name: "javascript, legacy type", contentType: "application/javascript", accept: "*/*", acceptEncoding: "gzip", firstChunk: 8192, wantEncoded: "gzip"},
		{name: "css", contentType: "text/css", accept: "text/css,*/*;q=0.1", acceptEncoding: "gzip", firstChunk: 8192, wantEncoded: "gzip"},
		{name: "plain text", contentType: "text/plain; charset=utf-8", accept: "*/*", acceptEncoding: "gzip", firstChunk: 8192, wantEncoded: "gzip"},
		{name: "svg", contentType: "image/svg+xml", accept: "image/*", acceptEncoding: "gzip", firstChunk: 8192, wantEncoded: "gzip"},
		// Already compressed: encoding it again only costs CPU.
		{name: "png stays as it is", contentType: "image/png", accept: "image/*", acceptEncoding: "gzip", firstChunk: 8192},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := url.Values{"type": {tt.contentType}, "size": {strconv.Itoa(tt.firstChunk)}}
			if tt.noBuffering {
				q.Set("no-buffering", "1")
			}
			path := "/page"
			var s *upstreamStream
			if tt.stream {
				path = "/stream"
				s = up.newStream(tt.quietStart)
				q.Set("id", s.id)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, proxy+path+"?"+q.Encode(), nil)
			require.NoError(t, err)
			req.Header.Set("Accept", tt.accept)
			// Set by hand, so the transport hands the body over as it came.
			req.Header.Set("Accept-Encoding", tt.acceptEncoding)

			budget := firstByteBudget
			if !tt.stream {
				budget = 10 * time.Second // a page is judged by its encoding, not its speed
			}
			resp := arrivesWithin(t, budget, "the response headers", func() (*http.Response, error) {
				return http.DefaultTransport.RoundTrip(req)
			})
			defer resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, tt.wantEncoded, resp.Header.Get("Content-Encoding"), "Content-Encoding of %s", tt.contentType)
			want := upstreamBody(tt.contentType, tt.firstChunk)

			if !tt.stream {
				got, err := io.ReadAll(resp.Body)
				require.NoError(t, err)
				switch tt.wantEncoded {
				case "gzip":
					zr, err := gzip.NewReader(bytes.NewReader(got))
					require.NoError(t, err)
					got, err = io.ReadAll(zr)
					require.NoError(t, err)
					assert.Equal(t, want, got, "the page after gunzip")
				case "zstd":
					// The standard library has no zstd reader; the frame's
					// magic number shows what the body is.
					assert.True(t, bytes.HasPrefix(got, []byte{0x28, 0xb5, 0x2f, 0xfd}), "a zstd frame")
					assert.Less(t, len(got), len(want), "compressed")
				default:
					assert.Equal(t, want, got)
				}
				return
			}

			if tt.wantEncoded != resp.Header.Get("Content-Encoding") {
				return // the bytes are not the event; reading them proves nothing more
			}
			if tt.quietStart {
				close(s.release)
			}
			got := arrivesWithin(t, firstByteBudget, "the first event", func() ([]byte, error) {
				b := make([]byte, len(want))
				_, err := io.ReadFull(resp.Body, b)
				return b, err
			})
			assert.Equal(t, string(want), string(got), "the first event")
			select {
			case <-s.done:
				t.Errorf("the upstream ended the stream; the event must arrive while it is held open")
			default:
			}
		})
	}
}

// arrivesWithin runs f and fails the test unless f returns, without error,
// before budget; what names what was awaited.
func arrivesWithin[T any](t *testing.T, budget time.Duration, what string, f func() (T, error)) T {
	t.Helper()
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := f()
		ch <- result{v, err}
	}()
	timer := time.NewTimer(budget)
	defer timer.Stop()
	select {
	case r := <-ch:
		require.NoError(t, r.err, "waiting for %s", what)
		return r.v
	case <-timer.C:
		t.Fatalf("%s did not arrive through the proxy within %s", what, budget)
		panic("unreachable")
	}
}

// upstreamBody is the page, or a stream's first chunk, of size bytes:
// repetitive, so compression shows, and for event streams one whole event.
func upstreamBody(contentType string, size int) []byte {
	if strings.HasPrefix(contentType, "text/event-stream") {
		const head, tail = "event: log\ndata: ", "\n\n"
		return []byte(head + strings.Repeat("x", size-len(head)-len(tail)) + tail)
	}
	const line = "all work and no play makes a proxy a dull proxy\n"
	return bytes.Repeat([]byte(line), size/len(line)+1)[:size]
}

// streamingUpstream is the service behind the proxy.
type streamingUpstream struct {
	port int
	mu   sync.Mutex
	next int
	open map[string]*upstreamStream
	stop chan struct{} // closed at cleanup: every stream ends
}

// upstreamStream is one stream the test has announced to the upstream.
type upstreamStream struct {
	id      string
	release chan struct{} // quiet start: closed by the test to send the first event
	done    chan struct{} // closed by the upstream when the stream ends
}

// newStreamingUpstream serves /page (a whole body at once) and /stream (a
// stream held open until the client leaves) on 127.0.0.1.
func newStreamingUpstream(t *testing.T) *streamingUpstream {
	u := &streamingUpstream{open: map[string]*upstreamStream{}, stop: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("/page", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		size, _ := strconv.Atoi(q.Get("size"))
		b := upstreamBody(q.Get("type"), size)
		w.Header().Set("Content-Type", q.Get("type"))
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		_, _ = w.Write(b)
	})
	mux.HandleFunc("/stream", u.serveStream)
	srv := httptest.NewServer(mux) // 127.0.0.1
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(u.stop) }) // runs before srv.Close
	u.port = srv.Listener.Addr().(*net.TCPAddr).Port
	return u
}

func (u *streamingUpstream) newStream(quietStart bool) *upstreamStream {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.next++
	s := &upstreamStream{id: strconv.Itoa(u.next), done: make(chan struct{})}
	if quietStart {
		s.release = make(chan struct{})
	}
	u.open[s.id] = s
	return s
}

func (u *streamingUpstream) serveStream(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	u.mu.Lock()
	s := u.open[q.Get("id")]
	u.mu.Unlock()
	if s == nil {
		http.Error(w, "unknown stream", http.StatusNotFound)
		return
	}
	defer close(s.done)
	size, _ := strconv.Atoi(q.Get("size"))
	h := w.Header()
	h.Set("Content-Type", q.Get("type"))
	h.Set("Cache-Control", "no-cache")
	if q.Has("no-buffering") {
		h.Set("X-Accel-Buffering", "no")
	}
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	if s.release != nil {
		select {
		case <-s.release:
		case <-r.Context().Done():
			return
		case <-u.stop:
			return
		}
	}
	_, _ = w.Write(upstreamBody(q.Get("type"), size))
	_ = rc.Flush()
	// Hold the stream open, as a live log does between lines.
	select {
	case <-r.Context().Done():
	case <-u.stop:
	}
}

// startCaddy renders the Caddyfile for one route to the upstream and runs
// it on a real Caddy; it returns the proxy's base URL. The route's site
// address is a plain http:// one on a free loopback port; the only edit to
// the rendered text is three global options that keep Caddy on loopback,
// without TLS and without an admin endpoint.
func startCaddy(t *testing.T, upstreamPort int) string {
	t.Helper()
	bin := caddyBinary(t)
	port := freeLoopbackPort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	rendered := caddyfile(model.TLS{Mode: "internal"}, []model.Route{{Host: base, Service: "127.0.0.1", Port: upstreamPort}})
	config := strings.Replace(rendered, "\n{\n", "\n{\n\tadmin off\n\tauto_https off\n\tdefault_bind 127.0.0.1\n", 1)
	require.NotEqual(t, rendered, config, "no global options block in the rendered Caddyfile:\n%s", rendered)

	dir := t.TempDir()
	file := filepath.Join(dir, "Caddyfile")
	require.NoError(t, os.WriteFile(file, []byte(config), 0o644))
	cmd := exec.Command(bin, "run", "--config", file, "--adapter", "caddyfile")
	// Caddy's data and config directories (certificates, autosave) stay in
	// the test's directory.
	cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
	var log caddyLog
	cmd.Stdout, cmd.Stderr = &log, &log
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("Caddyfile:\n%s\ncaddy's log:\n%s", config, log.String())
		}
	})

	deadline := time.Now().Add(30 * time.Second)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := client.Get(base + "/page?type=text/plain&size=1")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		select {
		case <-exited:
			t.Fatalf("caddy exited before it served %s (last error: %v):\n%s", base, err, log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("caddy did not serve %s within 30 s (last error: %v):\n%s", base, err, log.String())
		}
		// Poll again once the next connection attempt has had a moment.
		select {
		case <-exited:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// caddyBinary returns the Caddy that hack/testenv/caddy.sh builds (once per
// machine) and checks that it is the pinned version.
func caddyBinary(t *testing.T) string {
	t.Helper()
	cmd := exec.Command("bash", "../../hack/testenv/caddy.sh")
	cmd.Stderr = os.Stderr // a cold build takes a minute or two; show its progress
	out, err := cmd.Output()
	require.NoError(t, err, "hack/testenv/caddy.sh could not provide caddy %s", caddyVersion)
	var bin string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "ORCHESTRATOR_TESTENV_CADDY="); ok {
			bin = v
		}
	}
	require.NotEmpty(t, bin, "hack/testenv/caddy.sh printed no ORCHESTRATOR_TESTENV_CADDY line:\n%s", out)
	info, err := buildinfo.ReadFile(bin)
	require.NoError(t, err, "reading the build information of %s", bin)
	require.Equal(t, "github.com/caddyserver/caddy/v2", info.Main.Path, "%s is not a Caddy build", bin)
	require.Equal(t, caddyVersion, info.Main.Version, "%s is not the Caddy the proxy image pins", bin)
	return bin
}

// freeLoopbackPort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// caddyLog collects caddy's output, written from its two pipes at once.
type caddyLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *caddyLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *caddyLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

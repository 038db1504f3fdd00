// Command standin is a stand-in for the platform's HTTP services (app, Tracardi,
// Kestra, Postiz, Portainer, ...) in end-to-end tests, where no registry is
// reachable and the real images cannot be pulled.
//
// Serving (the default):
//
//	PORTS=8080,9000 standin
//
// answers 200 on every path of every port, so whatever health endpoint a
// catalog entry declares works. FAIL_HEALTH=1 makes every answer a 503, to
// simulate a service that never turns healthy. Each request is logged to stdout.
//
// Dialing once:
//
//	DIAL_ONCE=temporal:7233 standin
//
// also connects to that address at start (retrying every second until it
// first answers), sends one HTTP request so that an HTTP server (another
// stand-in) keeps the connection open, and holds it until the peer closes
// it. It never dials again: that is how Postiz's Temporal worker behaves
// (gitroomhq/postiz-app#1748), which the Postiz watchdog's test needs. Each
// step is logged to stdout with the prefix "dial-once:".
//
// Probing:
//
//	standin probe http://127.0.0.1:8080/healthz
//
// does one GET and exits 0 when the status is below 400, else 1. Compose
// healthchecks can use it as ["CMD","/standin","probe","URL"] in an image that
// has no shell.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "probe" {
		os.Exit(probe(os.Args[2:]))
	}
	if len(os.Args) > 1 {
		// Stand-ins replace images whose command the catalog sets (redis
		// flags, kestra's server mode, ...): note the arguments and serve.
		log.Printf("standin: ignoring arguments %q", os.Args[1:])
	}
	if err := serve(); err != nil {
		log.Printf("standin: %v", err)
		os.Exit(1)
	}
}

// probe exits 0 on an HTTP status below 400 so that it matches what
// `wget -q --spider` and `curl -f` healthchecks accept.
func probe(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: standin probe URL")
		return 2
	}
	// Short enough that a compose healthcheck's own timeout is never what fires.
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(args[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "probe %s: %v\n", args[0], err)
		return 1
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode >= 400 {
		fmt.Fprintf(os.Stderr, "probe %s: status %d\n", args[0], resp.StatusCode)
		return 1
	}
	return 0
}

func serve() error {
	ports, err := parsePorts(os.Getenv("PORTS"))
	if err != nil {
		return err
	}
	status := http.StatusOK
	if v := os.Getenv("FAIL_HEALTH"); v != "" && v != "0" && !strings.EqualFold(v, "false") {
		status = http.StatusServiceUnavailable
	}

	dialAddr := os.Getenv("DIAL_ONCE")
	if dialAddr != "" {
		if _, _, err := net.SplitHostPort(dialAddr); err != nil {
			return fmt.Errorf("DIAL_ONCE=%q: %w", dialAddr, err)
		}
	}
	logger := log.New(os.Stdout, "", log.LstdFlags|log.LUTC)

	// As PID 1 in a container the kernel ignores SIGTERM unless the process
	// handles it, which would make every `docker stop` wait for its timeout.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if dialAddr != "" {
		go dialOnce(ctx, dialAddr, logger)
	}

	servers := make([]*http.Server, 0, len(ports))
	errs := make(chan error, len(ports))
	for _, port := range ports {
		// Listen before logging "listening" so a log watcher never races the bind.
		ln, err := net.Listen("tcp", ":"+strconv.Itoa(port))
		if err != nil {
			return err
		}
		srv := &http.Server{
			Handler:           handler(port, status, logger),
			ReadHeaderTimeout: 10 * time.Second,
		}
		servers = append(servers, srv)
		logger.Printf("listening on :%d (status %d)", port, status)
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs <- fmt.Errorf("port %d: %w", port, err)
			}
		}()
	}

	select {
	case <-ctx.Done():
	case err := <-errs:
		return err
	}
	logger.Printf("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, srv := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = srv.Shutdown(shutdownCtx)
		}()
	}
	wg.Wait()
	return nil
}

// dialOnce connects to addr once, retrying until the first success, and
// holds the connection until the peer closes it or ctx ends. It never
// dials again.
func dialOnce(ctx context.Context, addr string, logger *log.Logger) {
	var conn net.Conn
	for attempt := 1; ; attempt++ {
		d := net.Dialer{Timeout: 5 * time.Second}
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			conn = c
			break
		}
		if ctx.Err() != nil {
			return
		}
		if attempt == 1 {
			logger.Printf("dial-once: %s: %v; retrying every second until it answers", addr, err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
	logger.Printf("dial-once: dialed %s from %s; holding the connection", addr, conn.LocalAddr())
	// Go's HTTP server closes a connection that sends no request within
	// its header timeout; after one request it waits for the next forever.
	host, _, _ := net.SplitHostPort(addr)
	if _, err := fmt.Fprintf(conn, "GET /dial-once HTTP/1.1\r\nHost: %s\r\nUser-Agent: standin-dial-once\r\n\r\n", host); err != nil {
		logger.Printf("dial-once: writing to %s: %v", addr, err)
	}
	stopClosing := context.AfterFunc(ctx, func() { conn.Close() })
	defer stopClosing()
	_, err := io.Copy(io.Discard, conn)
	if ctx.Err() != nil {
		return
	}
	reason := "closed by the peer"
	if err != nil {
		reason = err.Error()
	}
	logger.Printf("dial-once: connection to %s lost (%s); never dialing again", addr, reason)
}

func handler(port, status int, logger *log.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		logger.Printf("%s :%d %s %s -> %d", r.RemoteAddr, port, r.Method, r.URL.RequestURI(), status)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		if r.Method != http.MethodHead {
			fmt.Fprintf(w, "standin :%d %s\n", port, http.StatusText(status))
		}
	})
}

func parsePorts(spec string) ([]int, error) {
	if strings.TrimSpace(spec) == "" {
		return []int{8080}, nil
	}
	seen := map[int]bool{}
	var ports []int
	for _, field := range strings.Split(spec, ",") {
		field = strings.TrimSpace(field)
		if field == "" {
			continue
		}
		port, err := strconv.Atoi(field)
		if err != nil || port < 1 || port > 65535 {
			return nil, fmt.Errorf("PORTS=%q: %q is not a port number (1-65535)", spec, field)
		}
		if !seen[port] {
			seen[port] = true
			ports = append(ports, port)
		}
	}
	if len(ports) == 0 {
		return nil, fmt.Errorf("PORTS=%q names no port", spec)
	}
	return ports, nil
}

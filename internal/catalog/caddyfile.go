package catalog

import (
	"fmt"
	"strings"

	"github.com/aipairpro/orchestrator/internal/model"
)

// compressible lists the response types the proxy compresses: Caddy's own
// default list (modules/caddyhttp/encode in 2.10.2) with its catch-all
// text/* spelt out, so that text/event-stream is not on it, and without
// multipart/mixed and multipart/bag, which streaming APIs use. A trailing
// * lets parameters such as charset follow.
var compressible = []string{
	"application/atom+xml*",
	"application/eot*",
	"application/font*",
	"application/geo+json*",
	"application/graphql+json*",
	"application/javascript*",
	"application/json*",
	"application/ld+json*",
	"application/manifest+json*",
	"application/opentype*",
	"application/otf*",
	"application/rss+xml*",
	"application/truetype*",
	"application/ttf*",
	"application/vnd.api+json*",
	"application/vnd.ms-fontobject*",
	"application/wasm*",
	"application/x-httpd-cgi*",
	"application/x-javascript*",
	"application/x-opentype*",
	"application/x-otf*",
	"application/x-perl*",
	"application/x-protobuf*",
	"application/x-ttf*",
	"application/xhtml+xml*",
	"application/xml*",
	"font/otf*",
	"font/ttf*",
	"image/svg+xml*",
	"image/vnd.microsoft.icon*",
	"image/x-icon*",
	"text/cache-manifest*",
	"text/calendar*",
	"text/css*",
	"text/csv*",
	"text/html*",
	"text/javascript*",
	"text/js*",
	"text/markdown*",
	"text/plain*",
	"text/richtext*",
	"text/tab-separated-values*",
	"text/vcard*",
	"text/vtt*",
	"text/x-component*",
	"text/x-markdown*",
	"text/x-yaml*",
	"text/xml*",
	"text/yaml*",
}

// caddyToken writes s as one Caddyfile token: as it is when it holds only
// characters the Caddyfile lexer has no use for, else in double quotes
// with '"' and '\' escaped, so that '#' (a comment), whitespace and quotes
// stay inside it. Quotes do not stop Caddy's placeholders ({...}); the
// spec's grammar keeps braces out of the values written here.
func caddyToken(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-") == "" {
		return s
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// caddyfile renders the proxy's configuration: one site per route, each
// compressing what is worth compressing and passing everything to its
// service.
//
// Caddy's encode holds a response's headers back until the first bytes of
// its body and compresses text/* by default, so an event stream behind it
// stalls: the client sees nothing until the upstream's first event, and a
// large event arrives compressed (caddyserver/caddy#6293, open in 2.10.2).
// Hence the compress snippet: a request for an event stream (EventSource
// always sends Accept: text/event-stream) bypasses encode, so nothing holds
// its headers; a response is compressed only when its type is on the list
// above and the upstream did not send X-Accel-Buffering, the header with
// which streaming servers ask proxies not to buffer; encode itself already
// leaves Cache-Control: no-transform responses alone.
//
// reverse_proxy needs no flush_interval: it flushes every write at once for
// text/event-stream and for any response of unknown length.
func caddyfile(tls model.TLS, routes []model.Route) string {
	var sb strings.Builder
	sb.WriteString("# Rendered by orchestrator. Do not edit: change stack.yaml and render again.\n{\n")
	if tls.Mode == "internal" {
		// A local CA: works offline; the container cannot touch the host's
		// trust store, so trust the CA by hand (see the README).
		sb.WriteString("\tlocal_certs\n\tskip_install_trust\n")
	} else if tls.Email != "" {
		fmt.Fprintf(&sb, "\temail %s\n", caddyToken(tls.Email))
	}
	sb.WriteString("}\n")
	sb.WriteString(`
# Compression for every site, never for a stream: encode holds headers back
# until the first bytes of a body, which stalls server-sent events. Requests
# for an event stream bypass it; of the rest, only these types are
# compressed, and not when the upstream sends X-Accel-Buffering.
(compress) {
	@compressible not header Accept *text/event-stream*
	encode @compressible zstd gzip {
		match {
`)
	for _, t := range compressible {
		fmt.Fprintf(&sb, "\t\t\theader Content-Type %s\n", t)
	}
	sb.WriteString("\t\t\theader !X-Accel-Buffering\n\t\t}\n\t}\n}\n")
	for _, r := range routes {
		fmt.Fprintf(&sb, "\n%s {\n\timport compress\n\treverse_proxy %s:%d\n}\n", r.Host, r.Service, r.Port)
	}
	return sb.String()
}

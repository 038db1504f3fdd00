package engine

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"
)

// Encoders are the template functions that put a value into another
// syntax. Every template in the catalog that places a secret or a URL
// inside a URL or a YAML document pipes it through one of these, so a
// value with that syntax's special characters keeps its meaning.
var Encoders = map[string]any{
	"urlUserinfo": URLUserinfo,
	"yaml":        YAMLString,
	"redisConf":   RedisConfString,
}

// URLUserinfo percent-encodes s for the password part of a URL's userinfo
// (RFC 3986 §3.2.1), the way net/url writes url.UserPassword: '@', ':',
// '/', '#', '?', '%' and spaces are escaped, letters, digits and "-._~"
// are kept. "p@ss:w/rd#1" gives "p%40ss%3Aw%2Frd%231".
func URLUserinfo(s string) string {
	// url.UserPassword escapes exactly the userinfo set; "u:" is cut off.
	return strings.TrimPrefix(url.UserPassword("u", s).String(), "u:")
}

// RedisConfString returns s as one argument of a redis.conf directive: in
// double quotes, where Redis's parser (sdssplitargs) reads \\, \" and \xHH
// escapes; every byte outside printable ASCII is written as \xHH, so
// "p@ss word\"" reads back as exactly that.
func RedisConfString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&b, "\\x%02x", c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// YAMLString returns s as a double-quoted YAML scalar that every YAML 1.1
// and 1.2 parser reads back as exactly s: JSON's string syntax, which is a
// subset of YAML's double-quoted style (YAML 1.2 §7.3.1; YAML 1.1 has the
// same escapes), written without HTML escaping and without "\/".
func YAMLString(s string) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(buf.String(), "\n")
}

// InputsDigest is "sha256:<hex>" over parts sorted, each followed by a NUL,
// or "" for no parts: the digest a backend labels a workload with so that
// a change in the contents it reads (secrets, files) rolls it. It reveals
// nothing of high-entropy values.
func InputsDigest(parts []string) string {
	if len(parts) == 0 {
		return ""
	}
	sorted := append([]string(nil), parts...)
	sort.Strings(sorted)
	h := sha256.New()
	for _, p := range sorted {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

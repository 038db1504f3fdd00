package engine

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// redisArg reads one double-quoted argument the way Redis reads its config
// file (sds.c, sdssplitargs): \xHH, \n, \r, \t, \b, \a and \<c> escapes;
// the closing quote must end the line or be followed by a space.
func redisArg(t *testing.T, s string) string {
	t.Helper()
	require.True(t, len(s) >= 2 && s[0] == '"', "not quoted: %q", s)
	var out []byte
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+3 < len(s) && s[i+1] == 'x' && isHexDigit(s[i+2]) && isHexDigit(s[i+3]):
			v, _ := strconv.ParseUint(s[i+2:i+4], 16, 8)
			out = append(out, byte(v))
			i += 3
		case c == '\\' && i+1 < len(s):
			i++
			if e, ok := map[byte]byte{'n': '\n', 'r': '\r', 't': '\t', 'b': '\b', 'a': '\a'}[s[i]]; ok {
				out = append(out, e)
			} else {
				out = append(out, s[i])
			}
		case c == '"':
			require.Equal(t, len(s)-1, i, "text after the closing quote in %q", s)
			return string(out)
		default:
			out = append(out, c)
		}
	}
	t.Fatalf("unterminated quotes: %q", s)
	return ""
}

func isHexDigit(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func TestRedisConfStringReadsBack(t *testing.T) {
	for _, v := range []string{
		"0123456789abcdef", "p@ss word", `quo"te`, `back\slash\`, `\x41 not an escape`, "tab\tnew\nline",
		"ünïcödé ✓", "# not a comment", "'single'", "", "$HOME ${X}",
	} {
		enc := RedisConfString(v)
		assert.Equal(t, v, redisArg(t, enc), "%q encoded as %s", v, enc)
	}
	assert.Equal(t, `"p@ss \"w\\rd\""`, RedisConfString(`p@ss "w\rd"`))
}

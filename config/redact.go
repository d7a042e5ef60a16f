package config

import (
	"net/url"
	"regexp"
	"strings"
)

// redacted replaces every credential in an error message.
const redacted = "xxxxx"

// secretPair matches a key=value pair whose key names a credential, as
// libpq keyword/value strings (password = 'it”s'), URL query parameters
// (?sslpassword=...&) and .env lines write them. A quoted value runs to its
// closing quote, or to the end when the quote is never closed.
var secretPair = regexp.MustCompile(`(?i)([a-z0-9_.-]*(?:pass|pwd|secret|token|apikey|api_key|credential)[a-z0-9_.-]*)(\s*=\s*)('(?:[^'\\]|\\.)*'?|"(?:[^"\\]|\\.)*"?|[^\s&;#]*)`)

// redact returns s with every credential it may hold replaced: the password
// in the user information of each URL in it, and the value of every
// key=value pair whose key names a secret. It errs on the side of hiding
// too much: a string that cannot be parsed is still redacted.
func redact(s string) string {
	s = redactUserinfo(s)
	return secretPair.ReplaceAllString(s, "${1}${2}"+redacted)
}

// redactUserinfo hides what follows the user name in the user information
// of every URL in s. It does not parse the URL, so that a URL the parser
// refuses (a stray '%', an '@' or '/' in the password) is redacted too: the
// user information is taken to run from "://" to the last '@' before the
// URL ends at white space or a quote.
func redactUserinfo(s string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "://")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		start := i + len("://")
		end := start + urlEnd(s[start:])
		at := strings.LastIndexByte(s[start:end], '@')
		if at < 0 {
			b.WriteString(s[:end])
			s = s[end:]
			continue
		}
		userinfo := s[start : start+at]
		b.WriteString(s[:start])
		if colon := strings.IndexByte(userinfo, ':'); colon >= 0 {
			b.WriteString(userinfo[:colon+1] + redacted)
		} else {
			b.WriteString(userinfo)
		}
		s = s[start+at:]
	}
}

// urlEnd returns the length of the URL at the start of s: up to the first
// white space or quote, the characters that delimit a URL quoted in an
// error message.
func urlEnd(s string) int {
	if n := strings.IndexAny(s, " \t\r\n`\"'"); n >= 0 {
		return n
	}
	return len(s)
}

// secretsIn returns the credentials in s as written and decoded, so that
// they can be removed from a library's message that quotes them in another
// form than s.
func secretsIn(s string) []string {
	var out []string
	add := func(v string) {
		v = strings.Trim(v, `'"`)
		if v == "" {
			return
		}
		out = append(out, v)
		if dec, err := url.QueryUnescape(v); err == nil && dec != v && dec != "" {
			out = append(out, dec)
		}
	}
	rest := s
	for {
		i := strings.Index(rest, "://")
		if i < 0 {
			break
		}
		rest = rest[i+len("://"):]
		at := strings.LastIndexByte(rest[:urlEnd(rest)], '@')
		if at < 0 {
			continue
		}
		if colon := strings.IndexByte(rest[:at], ':'); colon >= 0 {
			add(rest[colon+1 : at])
		}
		rest = rest[at:]
	}
	for _, m := range secretPair.FindAllStringSubmatch(s, -1) {
		add(m[3])
	}
	return out
}

// scrub redacts msg, a library's message about value, and removes from it
// every credential of value in whatever form the library quoted it.
func scrub(msg, value string) string {
	msg = redact(msg)
	for _, secret := range secretsIn(value) {
		msg = strings.ReplaceAll(msg, secret, redacted)
	}
	return msg
}

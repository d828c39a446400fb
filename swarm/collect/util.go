package collect

import (
	"net/netip"
	"strings"

	"github.com/meshtrace/meshtrace/internal/textsafe"
)

func parseAddr(s string) netip.Addr {
	a, _ := netip.ParseAddr(s)
	return a
}

// lastLine is the last non-empty line of b, made safe to print.
func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return textsafe.String(strings.TrimSpace(lines[len(lines)-1]))
}

package parse

import (
	"io"
	"strings"

	"github.com/meshtrace/meshtrace/topology"
)

// Sysctl parses the output of `sysctl NAME…` (or `sysctl -a`, `sysctl
// net`): "net.ipv4.ip_forward = 1" lines, into a map of every key read.
// The value is trimmed (tabs inside it, as in ip_local_port_range, stay).
// sysctl prints a dot inside one component of the name (a link called
// eth0.5) as a slash, "net.ipv4.conf.eth0/5.rp_filter"; the key gets its
// dot back, which is how the live reader names it. A key printed twice
// keeps its last value. Which keys the model keeps is the bundle reader's
// business.
func Sysctl(file string, r io.Reader) (topology.Sysctls, []topology.Unparsed, error) {
	out := topology.Sysctls{}
	bad, err := linewise(file, "sysctl", r, func(_ int, line string, _ []string) string {
		k, v, ok := strings.Cut(line, "=")
		k = trimSpace(k)
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return "not \"key = value\""
		}
		out[strings.ReplaceAll(k, "/", ".")] = trimSpace(v)
		return ""
	})
	if err != nil {
		return nil, nil, err
	}
	return out, bad, nil
}

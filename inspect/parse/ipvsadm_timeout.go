package parse

import (
	"io"
	"strings"

	"github.com/meshtrace/meshtrace/topology"
)

const ipvsTimeoutHead = "Timeout (tcp tcpfin udp):"

// IpvsadmTimeout parses `ipvsadm -L --timeout`, one line "Timeout (tcp
// tcpfin udp): 900 120 300", into IPVS's idle timeouts in seconds. Anything
// else is an *Error: the file has nothing else to keep.
func IpvsadmTimeout(file string, r io.Reader) (*topology.IPVSTimeouts, error) {
	var out *topology.IPVSTimeouts
	bad, err := linewise(file, "ipvsadm -L --timeout", r, func(_ int, line string, _ []string) string {
		if out != nil {
			return "a second line after the timeouts"
		}
		rest, ok := strings.CutPrefix(trimSpace(line), ipvsTimeoutHead)
		f := fields(nil, rest)
		if !ok || len(f) != 3 {
			return "want " + quote(ipvsTimeoutHead) + " and three numbers"
		}
		var v [3]int
		for i, s := range f {
			if v[i], ok = atoi(s); !ok || v[i] > 1<<31-1 {
				return "bad timeout " + quote(s)
			}
		}
		out = &topology.IPVSTimeouts{TCP: v[0], TCPFin: v[1], UDP: v[2]}
		return ""
	})
	switch {
	case err != nil:
		return nil, err
	case len(bad) > 0:
		return nil, errorf(file, bad[0].Line, "%s: %q", bad[0].Reason, clip(bad[0].Text))
	case out == nil:
		return nil, errorf(file, 0, "no %q line", ipvsTimeoutHead)
	}
	return out, nil
}

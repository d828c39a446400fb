package parse

import (
	"io"
	"net/netip"
	"strings"

	"github.com/meshtrace/meshtrace/topology"
)

// ssStates are the socket states ss prints; a line starts with one when
// there is no Netid column (only -t or only -u).
var ssStates = map[string]bool{"LISTEN": true, "UNCONN": true, "ESTAB": true, "SYN-SENT": true, "SYN-RECV": true,
	"FIN-WAIT-1": true, "FIN-WAIT-2": true, "TIME-WAIT": true, "CLOSE-WAIT": true, "LAST-ACK": true, "CLOSING": true,
	"CLOSE": true, "UNKNOWN": true}

// SS parses `ss -Htuln` (also with a header, without -H, or -a: every
// state) into the listening sockets the live reader lists: TCP in LISTEN
// and UDP not connected (UNCONN), in file order. Other states and other
// socket kinds (unix, raw, …) are skipped. The address is what the socket
// is bound to, as sock_diag reports it: "0.0.0.0", "::" (which ss prints
// "*" for a dual-stack socket and "[::]" for a v6-only one), an IPv4-mapped
// IPv6 address as the IPv4 one; the device a socket is bound to
// ("0.0.0.0%eth0") is not kept. Without -n (service or host names) a line
// is not understood.
//
// `netstat -tuln` (or -tulpn, -a) is read too, by its rows' shape (a
// Recv-Q number after the protocol): tcp/tcp6 in LISTEN, and udp/udp6
// without a state (not connected); ":::7946" is "::" port 7946. netstat
// cannot tell a dual-stack socket from a v6-only one; both read as "::".
// Its UNIX domain sockets are skipped.
func SS(file string, r io.Reader) ([]topology.Socket, []topology.Unparsed, error) {
	out := []topology.Socket{}
	unix := false // in netstat's "Active UNIX domain sockets" part
	bad, err := linewise(file, "ss", r, func(_ int, _ string, f []string) string {
		switch {
		case f[0] == "Netid" || f[0] == "State" || f[0] == "Proto":
			return "" // the header (ss's, netstat's)
		case f[0] == "Active":
			unix = len(f) > 1 && f[1] == "UNIX"
			return "" // netstat's title of a part
		case unix:
			return ""
		case len(f) >= 4 && isNetstatProto(f[0]):
			if _, ok := atoi(f[1]); ok {
				return netstatRow(f, &out)
			}
		}
		proto, state := "", f[0]
		if !ssStates[state] {
			proto, f = f[0], f[1:]
			if len(f) == 0 || !ssStates[f[0]] {
				return "no socket state"
			}
			state = f[0]
		}
		if len(f) < 5 { // State Recv-Q Send-Q Local Peer [Process]
			return "want State Recv-Q Send-Q Local:Port Peer:Port"
		}
		if proto == "" { // one kind only: its listening state says which
			proto = map[string]string{"LISTEN": "tcp", "UNCONN": "udp"}[state]
		}
		if !(proto == "tcp" && state == "LISTEN" || proto == "udp" && state == "UNCONN") {
			return "" // not a listening TCP or UDP socket
		}
		addr, port, why := ssAddrPort(f[3])
		if why != "" {
			return why
		}
		out = append(out, topology.Socket{Proto: proto, Addr: addr, Port: port})
		return ""
	})
	if err != nil {
		return nil, nil, err
	}
	return out, bad, nil
}

func isNetstatProto(p string) bool {
	switch p {
	case "tcp", "tcp6", "udp", "udp6", "udpl", "udpl6", "raw", "raw6":
		return true
	}
	return false
}

// netstatRow reads a row of netstat -tuln: Proto Recv-Q Send-Q Local
// Foreign [State] [PID/Program], keeping listening sockets.
func netstatRow(f []string, out *[]topology.Socket) string {
	proto := strings.TrimSuffix(f[0], "6")
	if proto != "tcp" && proto != "udp" {
		return "" // raw, udplite: not listed by the live reader
	}
	if len(f) < 5 {
		return "want Proto Recv-Q Send-Q Local Foreign [State]"
	}
	state := ""
	if len(f) > 5 && !strings.Contains(f[5], "/") && f[5] != "-" {
		state = f[5]
	}
	if proto == "tcp" && state != "LISTEN" || proto == "udp" && state != "" && state != "CLOSE" {
		return "" // not a listening TCP or unconnected UDP socket
	}
	addr, port, why := netstatAddrPort(f[3])
	if why != "" {
		return why
	}
	*out = append(*out, topology.Socket{Proto: proto, Addr: addr, Port: port})
	return ""
}

// ssAddrPort parses ss's "0.0.0.0:53", "10.9.0.1%d0:90", "[::1]:81",
// "[::]%d0:546", "*:8443".
func ssAddrPort(s string) (netip.Addr, int, string) { return sockAddrPort(s, "ss -n") }

// netstatAddrPort parses netstat's "0.0.0.0:53", ":::7946", "fe80::1:123",
// "*:7946" (BSD-style wildcards).
func netstatAddrPort(s string) (netip.Addr, int, string) { return sockAddrPort(s, "netstat -n") }

// sockAddrPort reads ADDR:PORT as ss or netstat (named by collect, the
// command to use instead of a listing with names) print it.
func sockAddrPort(s, collect string) (netip.Addr, int, string) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return netip.Addr{}, 0, "no port in " + quote(s)
	}
	host, ps := s[:i], s[i+1:]
	port, ok := atoi(ps)
	if !ok || port > 65535 {
		return netip.Addr{}, 0, "port " + quote(ps) + " is not a number (collect with " + collect + ")"
	}
	if strings.HasPrefix(host, "[") {
		end := strings.IndexByte(host, ']')
		if end < 0 || (end+1 < len(host) && host[end+1] != '%') {
			return netip.Addr{}, 0, "bad address " + quote(host)
		}
		host = host[1:end]
	} else if j := strings.IndexByte(host, '%'); j >= 0 {
		host = host[:j]
	}
	if host == "*" || host == "" {
		return netip.IPv6Unspecified(), port, ""
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, 0, "address " + quote(host) + " is not numeric (collect with " + collect + ")"
	}
	return a.WithZone("").Unmap(), port, ""
}

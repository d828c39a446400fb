package trace

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// IPVSConn is one line of /proc/net/ip_vs_conn: a connection IPVS is
// tracking, from the client to the virtual service, sent on to a real
// server.
type IPVSConn struct {
	Proto   string         `json:"proto"`
	Client  netip.AddrPort `json:"client"`
	Virtual netip.AddrPort `json:"virtual"`
	Dest    netip.AddrPort `json:"dest"`
	State   string         `json:"state"`
	Expires int            `json:"expires"`
}

// ParseIPVSConn parses /proc/net/ip_vs_conn (IPv4 lines; IPv6 lines are
// skipped). name is used in errors.
func ParseIPVSConn(name string, r io.Reader) ([]IPVSConn, error) {
	var out []IPVSConn
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		f := strings.Fields(sc.Text())
		if len(f) == 0 || (line == 1 && f[0] == "Pro") {
			continue
		}
		if len(f) < 9 {
			return out, fmt.Errorf("%s:%d: want at least 9 fields, got %d", name, line, len(f))
		}
		if len(f[1]) != 8 { // IPv6 entries print full addresses
			continue
		}
		var c IPVSConn
		c.Proto = strings.ToLower(f[0])
		var err error
		for i, dst := range []*netip.AddrPort{&c.Client, &c.Virtual, &c.Dest} {
			if *dst, err = hexAddrPort(f[1+2*i], f[2+2*i]); err != nil {
				return out, fmt.Errorf("%s:%d: %w", name, line, err)
			}
		}
		c.State = f[7]
		if c.Expires, err = strconv.Atoi(f[8]); err != nil {
			return out, fmt.Errorf("%s:%d: expires %q: %w", name, line, f[8], err)
		}
		out = append(out, c)
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

func hexAddrPort(addr, port string) (netip.AddrPort, error) {
	b, err := hex.DecodeString(addr)
	if err != nil || len(b) != 4 {
		return netip.AddrPort{}, fmt.Errorf("address %q: not 8 hex digits", addr)
	}
	p, err := strconv.ParseUint(port, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("port %q: %w", port, err)
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b)), uint16(p)), nil
}

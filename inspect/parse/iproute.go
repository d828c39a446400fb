package parse

import (
	"io"
	"net/netip"
	"strings"

	"github.com/meshtrace/meshtrace/topology"
)

// routeTypes are the route types `ip route` prints before the destination.
var routeTypes = map[string]bool{"unicast": true, "local": true, "broadcast": true, "multicast": true, "throw": true,
	"unreachable": true, "prohibit": true, "blackhole": true, "nat": true, "anycast": true}

// routeTables are the table names iproute2 knows without rt_tables.
var routeTables = map[string]int{"main": 0, "local": 255, "default": 253}

// IPRoute parses `ip route show` (collect runs `ip -4 route show table
// main`) into routes in file order, as the live reader has them: Dst is
// the prefix ("10.50.1.1" becomes 10.50.1.1/32; default is
// topology.DefaultRoute), Gateway the
// via address, Dev, Src, and Table only when not main ("table 100",
// "table local"). A multipath route (its "nexthop via … dev …" lines under
// it) is one route per nexthop; a route without a device (blackhole,
// unreachable, prohibit) has no Dev. Flags and attributes the model does
// not keep (proto, scope, metric, onlink, linkdown, …) are skipped.
func IPRoute(file string, r io.Reader) ([]topology.Route, []topology.Unparsed, error) {
	out := []topology.Route{}
	var multi *topology.Route // a route head waiting for its nexthops
	nexthops := 0
	flush := func() {
		if multi != nil && nexthops == 0 {
			out = append(out, *multi)
		}
		multi, nexthops = nil, 0
	}
	bad, err := linewise(file, "ip route", r, func(_ int, line string, f []string) string {
		if f[0] == "nexthop" && (line[0] == ' ' || line[0] == '\t') {
			if multi == nil {
				return "nexthop without a route"
			}
			rt := *multi
			if why := routeAttrs(&rt, f[1:]); why != "" {
				return why
			}
			out = append(out, rt)
			nexthops++
			return ""
		}
		flush()
		rt, typ, why := routeHead(f)
		if why != "" {
			return why
		}
		if typ == "unicast" && rt.Dev == "" && !rt.Gateway.IsValid() {
			multi = &rt
			return ""
		}
		out = append(out, rt)
		return ""
	})
	flush()
	if err != nil {
		return nil, nil, err
	}
	return out, bad, nil
}

// routeHead parses "[TYPE] DST attrs…".
func routeHead(f []string) (topology.Route, string, string) {
	typ := "unicast"
	if n, ok := atoi(f[0]); ok { // ip -N prints the type as RTN_* (1: unicast)
		if n != 1 {
			typ = f[0]
		}
		f = f[1:]
	} else if routeTypes[f[0]] {
		typ, f = f[0], f[1:]
	}
	if len(f) == 0 {
		return topology.Route{}, "", "no destination"
	}
	rt := topology.Route{Dst: topology.DefaultRoute}
	if f[0] != "default" {
		p, ok := routeDst(f[0])
		if !ok {
			return rt, "", "bad destination " + quote(f[0])
		}
		if p.Bits() > 0 {
			rt.Dst = p
		}
	}
	return rt, typ, routeAttrs(&rt, f[1:])
}

// routeDst parses a destination: a prefix or an address (a host route).
func routeDst(s string) (netip.Prefix, bool) {
	if strings.IndexByte(s, '/') >= 0 {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err == nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, a.BitLen()), true
}

// routeAttrs reads via, dev, src and table; other words are skipped.
func routeAttrs(rt *topology.Route, f []string) string {
	for i := 0; i < len(f); i++ {
		k := f[i]
		if k != "via" && k != "dev" && k != "src" && k != "table" {
			continue
		}
		v, ok := after(f, i)
		if !ok {
			return k + " without a value"
		}
		i++
		switch k {
		case "via":
			if v == "inet" || v == "inet6" { // "via inet6 fe80::1" (an IPv4 route over an IPv6 next hop)
				if v, ok = after(f, i); !ok {
					return "via without an address"
				}
				i++
			}
			a, err := netip.ParseAddr(v)
			if err != nil {
				return "bad gateway " + quote(v)
			}
			rt.Gateway = a
		case "dev":
			rt.Dev = v
		case "src":
			a, err := netip.ParseAddr(v)
			if err != nil {
				return "bad src " + quote(v)
			}
			if !a.IsUnspecified() {
				rt.Src = a
			}
		case "table":
			n, ok := routeTables[v]
			if !ok {
				if n, ok = atoi(v); !ok || n > 1<<32-1 {
					return "table " + quote(v) + " is a name from rt_tables (collect with ip -N route)"
				}
			}
			if n == 254 {
				n = 0
			}
			rt.Table = n
		}
	}
	return ""
}

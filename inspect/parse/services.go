package parse

import (
	_ "embed"
	"strconv"
	"strings"
	"sync"
)

// services.txt is netbase's /etc/services (6.4, Debian): the names
// getservbyport gives `iptables -L` (without -n) for ports, on the
// machine that listed the rules. The names of netbase are the IANA names
// every distribution ships; a name a host added to its own file is not in
// it, and a rule that prints one stays undecidable.
//
//go:embed services.txt
var servicesText string

var (
	servicesOnce sync.Once
	services     map[string]int // "tcp/http-alt" -> 8080, aliases too
)

// servicePort is the port a service name stands for in proto ("tcp",
// "udp"; "" for either, when both agree), false when it is not known.
func servicePort(proto, name string) (int, bool) {
	servicesOnce.Do(func() {
		services = map[string]int{}
		for line := range strings.SplitSeq(servicesText, "\n") {
			line, _, _ = strings.Cut(line, "#")
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			ps, pr, ok := strings.Cut(f[1], "/")
			port, err := strconv.Atoi(ps)
			if !ok || err != nil {
				continue
			}
			for _, n := range append([]string{f[0]}, f[2:]...) {
				if _, dup := services[pr+"/"+n]; !dup {
					services[pr+"/"+n] = port
				}
			}
		}
	})
	if proto != "" {
		p, ok := services[proto+"/"+name]
		return p, ok
	}
	t, okT := services["tcp/"+name]
	u, okU := services["udp/"+name]
	switch {
	case okT && okU && t != u:
		return 0, false
	case okT:
		return t, true
	case okU:
		return u, true
	}
	return 0, false
}

// portNumber is v, a port as -L prints it, as a number: itself with -n,
// else the service name's port; false when it is neither.
func portNumber(proto, v string) (string, bool) {
	if _, ok := atoi(v); ok {
		return v, true
	}
	if p, ok := servicePort(proto, v); ok {
		return strconv.Itoa(p), true
	}
	return "", false
}

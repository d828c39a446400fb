package parse

import (
	"io"
	"net/netip"
	"strings"

	"github.com/meshtrace/meshtrace/topology"
)

// Ipvsadm parses one of three ipvsadm outputs, detected from the first
// non-blank line:
//
//   - `ipvsadm-save -n` (`ipvsadm -S -n`): "-A -f 256 -s rr",
//     "-a -f 256 -r 10.255.0.4:0 -m -w 1", "-A -t 10.0.0.1:80 -s wlc -p 360";
//   - `ipvsadm -Ln`: the "IP Virtual Server version" and column headers, then
//     "FWM  256 rr", "TCP  10.0.0.1:80 wlc persistent 360" and
//     "  -> 10.255.0.4:0  Masq  1  0  0" lines (also with --tun-info);
//   - `ipvsadm -Ln --stats [--exact]`: Conns InPkts OutPkts InBytes OutBytes
//     per service and per real server; without --exact large values carry a
//     K/M/G/T suffix (powers of 1000) and are read back rounded down as
//     ipvsadm printed them;
//   - `ipvsadm -Ln --rate`: CPS InPPS OutPPS InBPS OutBPS in their place
//     (ipvsadm.c print_service_entry, FMT_RATE); the model keeps counters,
//     not rates, so only the services and real servers are read.
//
// Addresses must be numeric (-n); IPv6 ones are bracketed ("[::1]:80").
// Forward methods map to "masq", "route", "tunnel" and "local";
// ipvsadm-save prints -g for both route and local, read as "route".
// The stats and rate formats carry no scheduler, forward method or weight: there
// Scheduler and Forward are empty and WeightUnknown is set: Weight 0 then
// means "not shown", not a drained server. Service flags ipvsadm may add after the scheduler in -Ln
// output (scheduler flags in parentheses, "ops", "pe NAME", ...) are
// skipped. The result has Available true and Impl "ipvs"; empty input (an
// empty ipvsadm-save) is an empty table.
func Ipvsadm(file string, r io.Reader) (*topology.IPVS, error) {
	p := &ipvsParser{
		file: file,
		out:  &topology.IPVS{Available: true, Services: []*topology.IPVSService{}},
		svcs: map[string]*topology.IPVSService{},
	}
	ls := newLines(file, r)
	for {
		line, ok := ls.next()
		if !ok {
			break
		}
		if trimSpace(line) == "" {
			continue
		}
		p.n = ls.n
		if err := p.line(line); err != nil {
			return nil, err
		}
	}
	if err := ls.err(); err != nil {
		return nil, err
	}
	return p.out, nil
}

const (
	ipvsUnknown = iota
	ipvsSave
	ipvsList
	ipvsStats
	ipvsRate
)

type ipvsParser struct {
	file   string
	n      int
	format int
	tun    bool // -Ln --tun-info: a TunnelInfo column before Weight
	out    *topology.IPVS
	cur    *topology.IPVSService
	svcs   map[string]*topology.IPVSService // ipvsadm-save: by service spec
	key    []byte                           // ipvsadm-save: the spec of the line's service
	f      []string
}

func (p *ipvsParser) errorf(format string, args ...any) error {
	return errorf(p.file, p.n, format, args...)
}

func (p *ipvsParser) line(line string) error {
	s := trimSpace(line)
	if p.format == ipvsUnknown {
		switch {
		case strings.HasPrefix(s, "-A ") || strings.HasPrefix(s, "-a "):
			p.format = ipvsSave
		case strings.HasPrefix(s, "IP Virtual Server version"), strings.HasPrefix(s, "Prot LocalAddress:Port"):
			p.format = ipvsList
		default:
			return p.errorf("not ipvsadm output: expected \"-A ...\" (ipvsadm-save -n) or \"IP Virtual Server version ...\" (ipvsadm -Ln), found %q", clip(s))
		}
	}
	p.f = fields(p.f, s)
	if p.format == ipvsSave {
		return p.saveLine()
	}
	switch {
	case strings.HasPrefix(s, "IP Virtual Server version"):
		if len(p.out.Services) > 0 {
			return p.errorf("second IP Virtual Server header")
		}
		return nil
	case strings.HasPrefix(s, "Prot LocalAddress:Port"):
		return p.header(s)
	case strings.HasPrefix(s, "-> RemoteAddress:Port"):
		p.tun = strings.Contains(s, "TunnelInfo")
		return nil
	case s[0] == '-' && strings.HasPrefix(s, "->"):
		if line[0] != ' ' && line[0] != '\t' {
			return p.errorf("real server line %q is not indented", clip(s))
		}
		return p.listDest()
	}
	return p.listService()
}

func (p *ipvsParser) header(s string) error {
	switch {
	case strings.Contains(s, "Conns") && strings.Contains(s, "OutBytes"):
		p.format = ipvsStats
	case strings.Contains(s, "Scheduler"):
		p.format = ipvsList
	case strings.Contains(s, "CPS") && strings.Contains(s, "OutBPS"):
		p.format = ipvsRate
	default:
		return p.errorf("unsupported ipvsadm listing %q: use -Ln, -Ln --stats or ipvsadm-save -n", clip(s))
	}
	if len(p.out.Services) > 0 {
		return p.errorf("second column header after services")
	}
	return nil
}

// listService parses "TCP  10.0.0.1:80 wlc persistent 360", "FWM  256 rr",
// "FWM  256 IPv6 rr", or with --stats "TCP  10.0.0.1:80  5  30  20  1800  2400".
func (p *ipvsParser) listService() error {
	f := p.f
	if len(f) < 2 {
		return p.errorf("bad service line %q", clip(strings.Join(f, " ")))
	}
	svc := &topology.IPVSService{Impl: "ipvs", Dests: []*topology.IPVSDest{}}
	i := 2
	switch f[0] {
	case "TCP", "UDP", "SCTP":
		ap, err := netip.ParseAddrPort(f[1])
		if err != nil {
			return p.errorf("service %s: bad address %q (not numeric? use ipvsadm -n)", f[0], f[1])
		}
		svc.Proto = strings.ToLower(f[0])
		svc.Addr, svc.Port = ap.Addr().Unmap(), int(ap.Port())
	case "FWM":
		m, ok := atou(f[1])
		if !ok || m == 0 || m > 1<<32-1 {
			return p.errorf("bad firewall mark %q", f[1])
		}
		svc.FWMark = uint32(m)
		if len(f) > 2 && f[2] == "IPv6" {
			i = 3
		}
	default:
		return p.errorf("unknown service line %q: want TCP, UDP, SCTP or FWM", clip(strings.Join(f, " ")))
	}
	if p.format == ipvsStats || p.format == ipvsRate {
		st, err := p.stats(f[i:])
		if err != nil {
			return err
		}
		if p.format == ipvsStats {
			svc.Stats = st
		}
	} else {
		if i >= len(f) {
			return p.errorf("service %s %s: no scheduler", f[0], f[1])
		}
		svc.Scheduler = f[i]
		for i++; i < len(f); i++ {
			switch {
			case f[i] == "persistent":
				if i+1 >= len(f) {
					return p.errorf("persistent without a timeout")
				}
				t, ok := atoi(f[i+1])
				if !ok {
					return p.errorf("bad persistence timeout %q", f[i+1])
				}
				svc.Persistent = t
				i++
			case f[i] == "mask" || f[i] == "pe":
				i++ // value skipped: the model has no field for it
			default:
				// scheduler flags "(sh-port,sh-fallback)", "ops", ...: skipped
			}
		}
	}
	p.out.Services = append(p.out.Services, svc)
	p.cur = svc
	return nil
}

// listDest parses "-> 10.255.0.4:0  Masq  1  0  0" (fields after the
// indentation), with --tun-info a TunnelInfo column before the weight, with
// --stats five counters.
func (p *ipvsParser) listDest() error {
	if p.cur == nil {
		return p.errorf("real server line before any service")
	}
	f := p.f
	if len(f) < 2 {
		return p.errorf("bad real server line")
	}
	ap, err := netip.ParseAddrPort(f[1])
	if err != nil {
		return p.errorf("real server: bad address %q (not numeric? use ipvsadm -n)", f[1])
	}
	d := &topology.IPVSDest{Addr: ap.Addr().Unmap(), Port: int(ap.Port())}
	if p.format == ipvsStats || p.format == ipvsRate {
		st, err := p.stats(f[2:])
		if err != nil {
			return err
		}
		if p.format == ipvsStats {
			d.Stats = st
		}
		d.WeightUnknown = true
		p.cur.Dests = append(p.cur.Dests, d)
		return nil
	}
	want := 6
	if p.tun {
		want = 7
	}
	if len(f) != want {
		return p.errorf("real server %s: want %d columns, found %d", f[1], want-1, len(f)-1)
	}
	fwd, ok := forwardNames[f[2]]
	if !ok {
		return p.errorf("real server %s: unknown forward method %q", f[1], f[2])
	}
	d.Forward = fwd
	nums := f[want-3:]
	w, ok1 := atoiSigned(nums[0])
	a, ok2 := atoi(nums[1])
	in, ok3 := atoi(nums[2])
	if !ok1 || !ok2 || !ok3 {
		return p.errorf("real server %s: bad weight or connection counts %q", f[1], strings.Join(nums, " "))
	}
	d.Weight, d.ActiveConns, d.InactConns = w, a, in
	p.cur.Dests = append(p.cur.Dests, d)
	return nil
}

var forwardNames = map[string]string{"Masq": "masq", "Route": "route", "Tunnel": "tunnel", "Local": "local"}

// stats reads the five counters Conns InPkts OutPkts InBytes OutBytes (or
// the five rates CPS InPPS OutPPS InBPS OutBPS, which print alike).
func (p *ipvsParser) stats(f []string) (*topology.IPVSStats, error) {
	if len(f) != 5 {
		if p.format == ipvsRate {
			return nil, p.errorf("want 5 rates (CPS InPPS OutPPS InBPS OutBPS), found %d", len(f))
		}
		return nil, p.errorf("want 5 counters (Conns InPkts OutPkts InBytes OutBytes), found %d", len(f))
	}
	var v [5]uint64
	for i, s := range f {
		n, ok := largenum(s)
		if !ok {
			return nil, p.errorf("bad counter %q", s)
		}
		v[i] = n
	}
	return &topology.IPVSStats{Conns: v[0], InPkts: v[1], OutPkts: v[2], InBytes: v[3], OutBytes: v[4]}, nil
}

// largenum reads a counter as ipvsadm's print_largenum writes it: digits,
// optionally followed by K, M, G or T (10^3, 10^6, 10^9, 10^12).
func largenum(s string) (uint64, bool) {
	mul := uint64(1)
	if n := len(s); n > 1 {
		switch s[n-1] {
		case 'K':
			mul = 1e3
		case 'M':
			mul = 1e6
		case 'G':
			mul = 1e9
		case 'T':
			mul = 1e12
		}
		if mul != 1 {
			s = s[:n-1]
		}
	}
	v, ok := atou(s)
	if !ok || v > ^uint64(0)/mul {
		return 0, false
	}
	return v * mul, true
}

// atoiSigned parses a decimal int that may be negative (ipvsadm prints the
// weight with %d).
func atoiSigned(s string) (int, bool) {
	if strings.HasPrefix(s, "-") {
		v, ok := atoi(s[1:])
		return -v, ok
	}
	return atoi(s)
}

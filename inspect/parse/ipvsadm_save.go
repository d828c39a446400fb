package parse

import (
	"net/netip"
	"strings"

	"github.com/meshtrace/meshtrace/topology"
)

// saveLine parses one ipvsadm-save line: "-A SERVICE [options]" or
// "-a SERVICE -r SERVER [options]", SERVICE being "-t|-u|--sctp-service
// ADDR:PORT" or "-f MARK [-6]".
func (p *ipvsParser) saveLine() error {
	f := p.f
	if f[0] != "-A" && f[0] != "-a" {
		return p.errorf("not an ipvsadm-save line: %q", clip(strings.Join(f, " ")))
	}
	var svc topology.IPVSService
	i, err := p.saveService(f, &svc)
	if err != nil {
		return err
	}
	if f[0] == "-A" {
		key := string(p.key)
		if _, dup := p.svcs[key]; dup {
			return p.errorf("service %s declared twice", key)
		}
		s := new(topology.IPVSService) // svc stays on the stack for the real servers' lines
		*s = svc
		if err := p.saveServiceOpts(s, f[i:]); err != nil {
			return err
		}
		s.Impl, s.Dests = "ipvs", []*topology.IPVSDest{}
		p.svcs[key] = s
		p.out.Services = append(p.out.Services, s)
		return nil
	}
	s := p.svcs[string(p.key)] // a real server's line: no copy of its key
	if s == nil {
		return p.errorf("real server for service %s, which no -A line declared", p.key)
	}
	d, err := p.saveDest(f[i:])
	if err != nil {
		return err
	}
	s.Dests = append(s.Dests, d)
	return nil
}

// saveService reads the service spec at f[1:] into svc; it leaves its key
// in p.key and returns the index of the first field after the spec.
func (p *ipvsParser) saveService(f []string, svc *topology.IPVSService) (int, error) {
	if len(f) < 3 {
		return 0, p.errorf("%s without a service", f[0])
	}
	i := 3
	switch f[1] {
	case "-t", "--tcp-service", "-u", "--udp-service", "--sctp-service":
		ap, err := netip.ParseAddrPort(f[2])
		if err != nil {
			return 0, p.errorf("bad service address %q (not numeric? use ipvsadm-save -n)", f[2])
		}
		svc.Addr, svc.Port = ap.Addr().Unmap(), int(ap.Port())
		switch f[1] {
		case "-t", "--tcp-service":
			svc.Proto = "tcp"
		case "-u", "--udp-service":
			svc.Proto = "udp"
		default:
			svc.Proto = "sctp"
		}
		p.key = ap.AppendTo(append(append(p.key[:0], svc.Proto...), ' '))
	case "-f", "--fwmark-service":
		m, ok := atou(f[2])
		if !ok || m == 0 || m > 1<<32-1 {
			return 0, p.errorf("bad firewall mark %q", f[2])
		}
		svc.FWMark = uint32(m)
		p.key = append(append(p.key[:0], "fwm "...), f[2]...)
		if len(f) > 3 && f[3] == "-6" {
			p.key = append(p.key, " IPv6"...)
			i = 4
		}
	default:
		return 0, p.errorf("%s: unknown service type %q", f[0], f[1])
	}
	return i, nil
}

func (p *ipvsParser) saveServiceOpts(svc *topology.IPVSService, f []string) error {
	for i := 0; i < len(f); i++ {
		switch f[i] {
		case "-s", "--scheduler":
			if i+1 >= len(f) {
				return p.errorf("%s without a scheduler", f[i])
			}
			svc.Scheduler = f[i+1]
			i++
		case "-p", "--persistent":
			svc.Persistent = 300 // ipvsadm's default timeout
			if i+1 < len(f) && !strings.HasPrefix(f[i+1], "-") {
				t, ok := atoi(f[i+1])
				if !ok {
					return p.errorf("bad persistence timeout %q", f[i+1])
				}
				svc.Persistent = t
				i++
			}
		case "-M", "--netmask", "--pe", "-b", "--sched-flags":
			if i+1 >= len(f) {
				return p.errorf("%s without a value", f[i])
			}
			i++ // no model field
		case "ops", "-o", "--ops":
		default:
			return p.errorf("unknown service option %q", f[i])
		}
	}
	if svc.Scheduler == "" {
		return p.errorf("service without a scheduler (-s)")
	}
	return nil
}

func (p *ipvsParser) saveDest(f []string) (*topology.IPVSDest, error) {
	d := &topology.IPVSDest{}
	seen := false
	for i := 0; i < len(f); i++ {
		switch f[i] {
		case "-r", "--real-server":
			if i+1 >= len(f) {
				return nil, p.errorf("-r without a server")
			}
			ap, err := netip.ParseAddrPort(f[i+1])
			if err != nil {
				return nil, p.errorf("bad real server address %q (not numeric? use ipvsadm-save -n)", f[i+1])
			}
			d.Addr, d.Port = ap.Addr().Unmap(), int(ap.Port())
			seen = true
			i++
		case "-m", "--masquerading":
			d.Forward = "masq"
		case "-g", "--gatewaying":
			d.Forward = "route"
		case "-i", "--ipip":
			d.Forward = "tunnel"
		case "-w", "--weight":
			if i+1 >= len(f) {
				return nil, p.errorf("-w without a weight")
			}
			w, ok := atoiSigned(f[i+1])
			if !ok {
				return nil, p.errorf("bad weight %q", f[i+1])
			}
			d.Weight = w
			i++
		case "-x", "--u-threshold", "-y", "--l-threshold", "--tun-type", "--tun-port":
			if i+1 >= len(f) {
				return nil, p.errorf("%s without a value", f[i])
			}
			i++ // no model field
		case "--tun-nocsum", "--tun-csum", "--tun-remcsum":
		default:
			return nil, p.errorf("unknown real server option %q", f[i])
		}
	}
	if !seen {
		return nil, p.errorf("-a without -r")
	}
	if d.Forward == "" {
		d.Forward = "route" // ipvsadm's default (-g)
	}
	return d, nil
}

package fault

import (
	"net/netip"

	"github.com/meshtrace/meshtrace/internal/addrplan"
)

func planDNATPort(p *planner) error {
	used := map[int]bool{}
	for _, s := range p.st.Services {
		used[s.Published] = true
	}
	port := p.svc.Published
	for used[port] {
		port = port%65535 + 1
	}
	return p.redirectDNAT(netip.AddrPortFrom(addrplan.SandboxGWIP, uint16(port)))
}

package fault

import (
	"fmt"

	"github.com/meshtrace/meshtrace/internal/addrplan"
)

func planBlockVXLAN(p *planner) error {
	rule := fmt.Sprintf("-p udp -m udp --dport %d -j DROP", addrplan.VXLANPort)
	p.f.Service = ""
	p.f.Detail = fmt.Sprintf("%s: filter INPUT %s", p.node.Name, rule)
	p.expect(WhereHost, "")
	return p.insertRule(p.host(), "filter", "INPUT", rule)
}

package fault

import (
	"fmt"

	"github.com/meshtrace/meshtrace/topology"
)

func planForwardDrop(p *planner) error {
	t, err := p.table(p.host(), "filter")
	if err != nil {
		return err
	}
	fwd := t.Chain("FORWARD")
	if fwd == nil || fwd.Policy != "ACCEPT" {
		return fmt.Errorf("%s: filter FORWARD policy is not ACCEPT (already broken?)", p.node.Name)
	}
	c := chainOf(t, "DOCKER-INGRESS")
	accept := p.publishedRule("ACCEPT")
	reply := func(r *topology.Rule) bool {
		return r.Target == "ACCEPT" && r.ProtoIs(p.svc.Proto) && r.SPort() == p.svc.Published
	}
	ix := find(c, func(r *topology.Rule) bool { return accept(r) || reply(r) })
	if len(ix) == 0 {
		return fmt.Errorf("no DOCKER-INGRESS accept of %s in %s filter (already broken?)", p.port(), p.node.Name)
	}
	p.f.Detail = fmt.Sprintf("%s: filter FORWARD policy DROP, and %d DOCKER-INGRESS accept rules of %s removed", p.node.Name, len(ix), p.port())
	p.expect(WhereHost, p.port())
	return p.rules(p.host(), "filter", &policy{fwd, "DROP"}, edit{chain: c, del: ix})
}

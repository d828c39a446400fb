package fault

import "fmt"

func planNoForward(p *planner) error {
	// Writing ip_forward sets every interface's forwarding; the undo puts
	// each back as it was.
	conf, err := p.k.Sysctls.SysctlGlob(p.host(), "net/ipv4/conf/*/forwarding")
	if err != nil {
		return fmt.Errorf("%s: %w", p.node.Name, err)
	}
	var undo []Action
	for _, k := range sortedKeys(conf) {
		a := p.action(p.host())
		a.Sysctl = &SysctlOp{Key: k, Value: conf[k]}
		undo = append(undo, a)
	}
	p.f.Service = ""
	p.f.Detail = p.node.Name + ": net.ipv4.ip_forward=0"
	p.expect(WhereHost, "")
	return p.sysctl(p.host(), "net/ipv4/ip_forward", "0", undo...)
}

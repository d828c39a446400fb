package fault

func planRPFilter(p *planner) error {
	p.f.Service = ""
	p.f.Detail = p.place(p.sandbox()) + ": net.ipv4.conf.eth1.rp_filter=1 (strict)"
	p.expect(WhereSandbox, "")
	return p.sysctl(p.sandbox(), "net/ipv4/conf/eth1/rp_filter", "1")
}

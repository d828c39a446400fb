package fault

import (
	"fmt"
	"path/filepath"

	"github.com/meshtrace/meshtrace/internal/dockerrules"
	"github.com/meshtrace/meshtrace/topology"
)

// planDNSRulesMissing flushes the task's DOCKER_OUTPUT and
// DOCKER_POSTROUTING chains (the DNAT of 127.0.0.11:53 to the resolver's
// ports and the SNAT back), as `iptables -t nat -F` of them would: the
// chains and the jumps to them stay, the resolver still listens.
func planDNSRulesMissing(p *planner) error {
	task, err := p.needTask()
	if err != nil {
		return err
	}
	t, err := p.table(task.Netns, "nat")
	if err != nil {
		return err
	}
	out, post := chainOf(t, dockerrules.ResolverOutputChain), chainOf(t, dockerrules.ResolverPostroutingChain)
	dnat := find(out, func(r *topology.Rule) bool { return r.Target == "DNAT" })
	if len(dnat) == 0 {
		return fmt.Errorf("%s nat %s has no DNAT (already broken? a mesh built before it had embedded DNS?)", p.place(task.Netns), out.Name)
	}
	all := func(c *topology.Chain) []int { return find(c, func(*topology.Rule) bool { return true }) }
	p.f.Detail = fmt.Sprintf("task %s (%s): flushed nat %s (%d rules: the DNAT of %s:53 to the resolver's ports %d/tcp %d/udp) and %s (%d)",
		task.Name, filepath.Base(task.Netns), out.Name, out.Len(), dockerrules.ResolverIP, task.Resolver.TCPPort, task.Resolver.UDPPort,
		post.Name, post.Len())
	p.expect(filepath.Base(task.Netns), "")
	return p.rules(task.Netns, "nat", nil, edit{chain: out, del: all(out)}, edit{chain: post, del: all(post)})
}

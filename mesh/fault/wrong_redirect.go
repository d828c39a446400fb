package fault

import (
	"fmt"
	"path/filepath"
	"strconv"
)

func planWrongRedirect(p *planner) error {
	task, err := p.needTask()
	if err != nil {
		return err
	}
	t, err := p.table(task.Netns, "nat")
	if err != nil {
		return err
	}
	c := chainOf(t, "PREROUTING")
	i, err := one(find(c, p.publishedRule("REDIRECT")), fmt.Sprintf("REDIRECT of %s in %s nat PREROUTING", p.port(), p.place(task.Netns)))
	if err != nil {
		return err
	}
	r := c.Rule(i)
	if r.NAT == nil || r.NAT.Port == 0 || r.NAT.Port != r.NAT.PortHi || int(r.NAT.Port) != p.svc.Target {
		return fmt.Errorf("%s: the REDIRECT %q does not go to the target port %d (already broken?)", p.place(task.Netns), r.Text, p.svc.Target)
	}
	wrong := p.svc.Target%65535 + 1
	newSpec := spec(r.WithTargetArgs("to-ports", strconv.Itoa(wrong)))
	p.f.Detail = fmt.Sprintf("task %s (%s): REDIRECT %d -> %d instead of %d", task.Name, filepath.Base(task.Netns), p.svc.Published, wrong, p.svc.Target)
	p.expect(filepath.Base(task.Netns), p.port())
	return p.replaceRule(task.Netns, "nat", c, i, newSpec)
}

package fault

import (
	"fmt"
	"path/filepath"
)

func planTaskDrop(p *planner) error {
	task, err := p.needTask()
	if err != nil {
		return err
	}
	rule := fmt.Sprintf("-d %s/32 -p %s -m %s --dport %d -j DROP", task.IP, p.svc.Proto, p.svc.Proto, p.svc.Target)
	p.f.Detail = fmt.Sprintf("task %s (%s): filter INPUT %s", task.Name, filepath.Base(task.Netns), rule)
	p.expect(filepath.Base(task.Netns), p.port())
	return p.insertRule(task.Netns, "filter", "INPUT", rule)
}

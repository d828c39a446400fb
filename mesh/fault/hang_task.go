package fault

import (
	"fmt"
	"strings"

	"github.com/meshtrace/meshtrace/mesh"
)

func planHangTask(p *planner) error {
	var names []string
	for i := range p.svc.Tasks {
		t := &p.svc.Tasks[i]
		if err := p.taskMode(t, mesh.TaskHang); err != nil {
			return err
		}
		names = append(names, t.Name)
	}
	p.f.Detail = fmt.Sprintf("tasks %s (every node) listen on %s/%d but never answer", strings.Join(names, ", "), p.svc.Proto, p.svc.Target)
	p.expect(WhereHost, p.port())
	return nil
}

package fault

import (
	"fmt"
	"path/filepath"

	"github.com/meshtrace/meshtrace/mesh"
)

func planStopTask(p *planner) error {
	task, err := p.needTask()
	if err != nil {
		return err
	}
	p.f.Detail = fmt.Sprintf("task %s (%s): the agent closed its %s/%d socket", task.Name, filepath.Base(task.Netns), p.svc.Proto, p.svc.Target)
	p.expect(filepath.Base(task.Netns), p.port())
	return p.taskMode(task, mesh.TaskStop)
}

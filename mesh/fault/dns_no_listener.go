package fault

import (
	"fmt"
	"path/filepath"

	"github.com/meshtrace/meshtrace/internal/dockerrules"
	"github.com/meshtrace/meshtrace/mesh"
)

// planDNSNoListener closes the task's embedded DNS server's sockets: the
// DNAT rules still send 127.0.0.11:53 to its ports, nothing listens there.
func planDNSNoListener(p *planner) error {
	task, err := p.needTask()
	if err != nil {
		return err
	}
	if task.Resolver.UDPPort == 0 {
		return fmt.Errorf("task %s has no embedded DNS server (a mesh built before it had one)", task.Name)
	}
	p.f.Detail = fmt.Sprintf("task %s (%s): its embedded DNS server closed %s:%d/udp and %s:%d/tcp; the DNAT rules stay",
		task.Name, filepath.Base(task.Netns), dockerrules.ResolverIP, task.Resolver.UDPPort, dockerrules.ResolverIP, task.Resolver.TCPPort)
	p.expect(filepath.Base(task.Netns), "")
	return p.serverMode(task, ServerDNS, mesh.TaskStop)
}

package fault

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/meshtrace/meshtrace/internal/probe"
	"github.com/meshtrace/meshtrace/mesh"
)

// traffic sends with the probe client from inside the namespace.
type traffic struct{ meshOnly }

var _ Traffic = traffic{}

func (k traffic) Send(netns, proto, addr string, sport int) (string, error) {
	if err := k.mine(netns); err != nil {
		return "", err
	}
	to, err := netip.ParseAddrPort(addr)
	if proto != "udp" || err != nil || sport < 1 || sport > 65535 {
		return "", fmt.Errorf("send: want a udp datagram to an address:port from a port, not %s to %q from %d", proto, addr, sport)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	a, err := probe.Do(ctx, probe.Request{Netns: netns, Proto: proto, To: to, SPort: uint16(sport)})
	return a.First(), err
}

// tasks asks the mesh's agent.
type tasks struct{ st *mesh.State }

var _ Tasks = tasks{}

func (k tasks) SetTaskMode(task, mode string) (string, error) {
	return k.st.SetTaskMode(task, mode, 5*time.Second)
}

func (k tasks) SetResolverMode(task, mode string) (string, error) {
	return k.st.SetResolverMode(task, mode, 5*time.Second)
}

package mesh

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"

	"github.com/meshtrace/meshtrace/internal/probe"
)

// Reply is a task server's answer.
type Reply struct {
	Task string // first line of the body: the task that answered
	Body string
}

// Ask sends one request from inside the namespace at netnsPath to addr
// (ip:port) with the probe client (internal/probe) and returns the
// answer: an HTTP GET for tcp (path may carry a query, e.g.
// "/?size=4000"), which must answer 200, one datagram for udp. Each call
// uses a new connection (a new source port), so each is a new connection
// for the load balancer.
func Ask(ctx context.Context, netnsPath, proto, addr, path string) (Reply, error) {
	to, err := netip.ParseAddrPort(addr)
	if err != nil {
		return Reply{}, fmt.Errorf("%s %s from %s: %w", proto, addr, netnsPath, err)
	}
	a, err := probe.Do(ctx, probe.Request{Netns: netnsPath, Proto: proto, To: to, Path: path})
	if err != nil {
		return Reply{}, err
	}
	if proto == "tcp" && a.Status != http.StatusOK {
		return Reply{}, fmt.Errorf("tcp %s from %s: %d %s", addr, netnsPath, a.Status, http.StatusText(a.Status))
	}
	return Reply{Task: a.First(), Body: a.Body}, nil
}

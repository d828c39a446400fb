package mesh

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/meshtrace/meshtrace/internal/addrplan"
	"github.com/meshtrace/meshtrace/internal/probe"
)

// Status loads mesh name and checks its health: the agent is alive, and
// every task's server answers inside the task's namespace (on 127.0.0.1,
// which the task's ingress filter leaves alone) with its own name.
func Status(ctx context.Context, runDir, name string) (*State, error) {
	st, err := Load(runDir, name)
	if err != nil {
		return nil, err
	}
	h := &Health{}
	st.Health = h
	h.AgentAlive = agentRunning(st.AgentPID, name, orDefault(runDir))
	if !h.AgentAlive {
		h.Problems = append(h.Problems, fmt.Sprintf("agent (pid %d) is not running: no task can answer (`meshtrace mesh down --name %s` and up again)", st.AgentPID, name))
	}
	if st.Phase != PhaseReady {
		h.Problems = append(h.Problems, fmt.Sprintf("mesh is in phase %q, not %q: `up` did not finish", st.Phase, PhaseReady))
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	problem := func(format string, a ...any) {
		mu.Lock()
		h.Problems = append(h.Problems, fmt.Sprintf(format, a...))
		mu.Unlock()
	}
	names := newDNSNames(st)
	for si := range st.Services {
		s := &st.Services[si]
		for ti := range s.Tasks {
			t := &s.Tasks[ti]
			wg.Add(1)
			go func() {
				defer wg.Done()
				addr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(s.Target)).String()
				r, err := Ask(ctx, t.Netns, s.Proto, addr, "")
				ok := err == nil && r.Task == t.Name
				t.Answering = &ok
				switch {
				case err != nil:
					problem("task %s: %v", t.Name, err)
				case !ok:
					problem("task %s: answered as %s", t.Name, strconv.Quote(r.Task))
				}
				if t.Resolver.UDPPort == 0 {
					return // built before the mesh had embedded DNS
				}
				// The task's embedded DNS server, as the task asks it.
				dr, err := probe.Lookup(ctx, probe.Query{Netns: t.Netns, From: t.Name, Name: s.Name})
				resolves := err == nil && sameAddrs(dr.Addrs, names.Lookup(s.Name))
				t.Resolving = &resolves
				switch {
				case err != nil:
					problem("task %s: embedded DNS: %v", t.Name, err)
				case !resolves:
					problem("task %s: embedded DNS answered %s %v for %s, want %v", t.Name, dr.Rcode, dr.Addrs, s.Name, names.Lookup(s.Name))
				}
			}()
		}
	}
	for ni := range st.Nodes {
		n := &st.Nodes[ni]
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The gossip port, from the LAN: as a peer node dials it.
			to := netip.AddrPortFrom(n.IP, addrplan.GossipPort)
			_, err := probe.Do(ctx, probe.Request{Netns: st.Client.Netns, Name: "client", Proto: "tcp", To: to, Mode: probe.Reached})
			ok := err == nil
			n.Gossip = &ok
			if err != nil {
				problem("node %s: gossip port: %v", n.Name, err)
			}
		}()
	}
	wg.Wait()
	sort.Strings(h.Problems)
	h.Healthy = len(h.Problems) == 0
	return st, nil
}

// sameAddrs says whether a and b hold the same addresses, in any order.
func sameAddrs(a, b []netip.Addr) bool {
	if len(a) != len(b) {
		return false
	}
	x := slices.SortedFunc(slices.Values(a), netip.Addr.Compare)
	y := slices.SortedFunc(slices.Values(b), netip.Addr.Compare)
	return slices.Equal(x, y)
}

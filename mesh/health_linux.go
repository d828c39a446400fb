package mesh

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"sync"
	"time"
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
				mu.Lock()
				defer mu.Unlock()
				t.Answering = &ok
				switch {
				case err != nil:
					h.Problems = append(h.Problems, fmt.Sprintf("task %s: %v", t.Name, err))
				case !ok:
					h.Problems = append(h.Problems, fmt.Sprintf("task %s: answered as %s", t.Name, strconv.Quote(r.Task)))
				}
			}()
		}
	}
	wg.Wait()
	sort.Strings(h.Problems)
	h.Healthy = len(h.Problems) == 0
	return st, nil
}

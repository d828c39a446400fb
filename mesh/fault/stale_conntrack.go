package fault

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"syscall"

	"github.com/meshtrace/meshtrace/mesh"
)

func planStaleConntrack(p *planner) error {
	if len(p.svc.Tasks) < 2 {
		return fmt.Errorf("service %s has %d task: a stale entry needs one task to take out and one to keep", p.svc.Name, len(p.svc.Tasks))
	}
	// A client port of its own (below the range mesh.Ask walks), so the
	// flow is the only one from it; another try if it is taken.
	addr := netip.AddrPortFrom(p.node.IP, uint16(p.svc.Published)).String()
	var (
		sport  int
		answer string
		err    error
	)
	for range 3 {
		sport = 20000 + rand.IntN(10000)
		if answer, err = p.k.Traffic.Send(p.st.Client.Netns, p.svc.Proto, addr, sport); !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	answered, _, ok := p.st.Task(answer)
	if !ok {
		return fmt.Errorf("client: %s answered as %q, not a task of the mesh", addr, answer)
	}
	// The datagram left entries in the host, the sandbox and the task:
	// the undo deletes them.
	send := Action{Netns: p.st.Client.Netns, Place: "client", Send: &SendOp{Proto: p.svc.Proto, Addr: addr, SPort: sport, Answer: answer}}
	var undo []Action
	for _, ns := range []string{p.host(), p.sandbox(), answered.Netns} {
		a := Action{Netns: ns, Place: p.place(ns), Conntrack: &ConntrackOp{Proto: p.svc.Proto, SPort: sport}}
		undo = append(undo, a)
	}
	p.done(send, undo...)
	p.f.ClientPort = sport
	p.f.Task = answered.Name
	p.f.Detail = fmt.Sprintf("client port %d -> %s answered by %s; then %s was taken out of fwmark %#x in %s", sport, addr, answered.Name, answered.Name, p.svc.FWMark, p.place(p.sandbox()))
	p.expect(WhereSandbox, p.port())
	if p.st.LB != mesh.LBIPVS {
		var takeOut error
		err := p.setEmulation(func(old []netip.Addr) []netip.Addr {
			var keep []netip.Addr
			for _, b := range old {
				if b != answered.IP {
					keep = append(keep, b)
				}
			}
			if len(keep) == len(old) || len(keep) == 0 {
				takeOut = fmt.Errorf("%s (%s) is not one of several emulated real servers %v of fwmark %#x", answered.Name, answered.IP, old, p.svc.FWMark)
				return old
			}
			return keep
		})
		if err == nil {
			err = takeOut
		}
		return err
	}
	s, err := p.ipvsService()
	if err != nil {
		return err
	}
	for _, d := range s.Dests {
		if d.Addr == answered.IP.String() {
			del, err := destOp(IPVSDelDest, s.FWMark, d)
			if err != nil {
				return err
			}
			add := del
			add.Op = IPVSAddDest
			return p.ipvs(del, add)
		}
	}
	return fmt.Errorf("%s (%s) is not a real server of IPVS FWM %d", answered.Name, answered.IP, s.FWMark)
}

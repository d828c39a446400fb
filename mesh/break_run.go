package mesh

import (
	"errors"
	"fmt"
	"io"
	"time"
)

// FaultKernel is what injecting and undoing faults needs from the machine:
// reads and writes inside the mesh's namespaces, and the agent's control
// channel. NewFaultKernel returns the real one; tests use a fake.
type FaultKernel interface {
	// SaveRules returns `iptables-save -t TABLE` of the namespace.
	SaveRules(netns, table string) (string, error)
	// RestoreRules runs lines through `iptables-restore --noflush` as
	// one transaction on table.
	RestoreRules(netns, table string, lines []string) error
	// Sysctl reads /proc/sys/KEY (slash-separated) in the namespace.
	Sysctl(netns, key string) (string, error)
	// SysctlGlob reads every /proc/sys key matching pattern.
	SysctlGlob(netns, pattern string) (map[string]string, error)
	SetSysctl(netns, key, value string) error
	// Link returns a link's MTU and GSO segment limit.
	Link(netns, name string) (LinkOp, error)
	SetLink(netns string, l LinkOp) error
	// FDB lists the permanent `self` FDB entries of a device that have a
	// destination.
	FDB(netns, dev string) ([]FDBSpec, error)
	SetFDB(netns string, op FDBOp) error
	// IPVSServices lists the firewall-mark services with their real
	// servers' weights.
	IPVSServices(netns string) ([]IPVSState, error)
	IPVS(netns string, op IPVSOp) error
	// DeleteConntrack deletes the entries of proto with original source
	// port sport and returns how many there were.
	DeleteConntrack(netns, proto string, sport int) (int, error)
	// Send sends one datagram (udp) from the namespace, from local port
	// sport, to addr and returns the first line of the answer (the task).
	Send(netns, proto, addr string, sport int) (string, error)
	// SetTaskMode puts a task's server in mode through the agent and
	// returns the mode it had.
	SetTaskMode(task, mode string) (prev string, err error)
}

// IPVSState is one firewall-mark service as read back.
type IPVSState struct {
	FWMark    uint32
	Scheduler string
	Dests     []IPVSDestState
}

// IPVSDestState is one real server.
type IPVSDestState struct {
	Addr   string
	Weight int
}

// BreakRequest says what to break where.
type BreakRequest struct {
	Fault   string
	Node    string // "" = the first node
	Service string // "" = the first service the fault can use
}

// BreakOptions are Break's and Repair's knobs.
type BreakOptions struct {
	RunDir string // "" = DefaultRunDir
	// Kernel is the machine ("" = NewFaultKernel(state)).
	Kernel FaultKernel
}

func (o BreakOptions) kernel(st *State) (FaultKernel, error) {
	if o.Kernel != nil {
		return o.Kernel, nil
	}
	return NewFaultKernel(st)
}

// Break injects one fault into mesh name and records how to undo it. A
// fault that fails half way is rolled back.
func Break(name string, req BreakRequest, o BreakOptions) (*Fault, error) {
	st, err := Load(o.RunDir, name)
	if err != nil {
		return nil, err
	}
	if st.Phase != PhaseReady {
		return nil, fmt.Errorf("mesh %s: phase %q: `up` did not finish", name, st.Phase)
	}
	kind, err := LookupFault(req.Fault)
	if err != nil {
		return nil, err
	}
	p, err := newPlanner(st, kind, req)
	if err != nil {
		return nil, err
	}
	k, err := o.kernel(st)
	if err != nil {
		return nil, err
	}
	p.k = k
	unlock, err := lockFaults(st.Dir)
	if err != nil {
		return nil, fmt.Errorf("mesh %s: %w", name, err)
	}
	defer unlock()
	log, err := loadFaultLog(st.Dir)
	if err != nil {
		return nil, fmt.Errorf("mesh %s: %w", name, err)
	}
	if err := kind.plan(p); err != nil {
		if rerr := undoSteps(k, p.f.Steps); rerr != nil {
			err = fmt.Errorf("%w (and rolling back failed: %v)", err, rerr)
		}
		return nil, fmt.Errorf("mesh %s: break %s on %s: %w", name, kind.Name, p.node.Name, err)
	}
	p.f.ID = log.NextID
	p.f.Time = time.Now().UTC().Truncate(time.Second)
	log.NextID++
	log.Faults = append(log.Faults, *p.f)
	if err := log.save(st.Dir); err != nil {
		rerr := undoSteps(k, p.f.Steps)
		return nil, fmt.Errorf("mesh %s: record fault: %w (rolled back: %v)", name, err, rerr)
	}
	return p.f, nil
}

// Repair undoes every fault injected into mesh name, newest first, and
// returns them. It stops at the first step that fails; the faults not yet
// undone stay recorded, so repair can be run again.
func Repair(name string, o BreakOptions) ([]Fault, error) {
	st, err := Load(o.RunDir, name)
	if err != nil {
		return nil, err
	}
	unlock, err := lockFaults(st.Dir)
	if err != nil {
		return nil, fmt.Errorf("mesh %s: %w", name, err)
	}
	defer unlock()
	log, err := loadFaultLog(st.Dir)
	if err != nil {
		return nil, fmt.Errorf("mesh %s: %w", name, err)
	}
	if len(log.Faults) == 0 {
		return nil, nil
	}
	k, err := o.kernel(st)
	if err != nil {
		return nil, err
	}
	var done []Fault
	for len(log.Faults) > 0 {
		f := log.Faults[len(log.Faults)-1]
		if err := undoSteps(k, f.Steps); err != nil {
			return done, fmt.Errorf("mesh %s: repair fault %d (%s on %s): %w", name, f.ID, f.Kind, f.Node, err)
		}
		log.Faults = log.Faults[:len(log.Faults)-1]
		if err := log.save(st.Dir); err != nil {
			return done, fmt.Errorf("mesh %s: %w", name, err)
		}
		done = append(done, f)
	}
	return done, nil
}

// undoSteps runs the undo actions of steps, last step first.
func undoSteps(k FaultKernel, steps []Step) error {
	var errs []error
	for i := len(steps) - 1; i >= 0; i-- {
		for _, a := range steps[i].Undo {
			if err := apply(k, a); err != nil {
				errs = append(errs, fmt.Errorf("undo %s: %w", a, err))
			}
		}
		if len(errs) > 0 {
			return errors.Join(errs...)
		}
	}
	return nil
}

// apply performs one action.
func apply(k FaultKernel, a Action) error {
	switch {
	case a.Rules != nil:
		return k.RestoreRules(a.Netns, a.Rules.Table, a.Rules.Lines)
	case a.Sysctl != nil:
		return k.SetSysctl(a.Netns, a.Sysctl.Key, a.Sysctl.Value)
	case a.Link != nil:
		return k.SetLink(a.Netns, *a.Link)
	case a.FDB != nil:
		return k.SetFDB(a.Netns, *a.FDB)
	case a.Task != nil:
		_, err := k.SetTaskMode(a.Task.Task, a.Task.Mode)
		return err
	case a.Conntrack != nil:
		_, err := k.DeleteConntrack(a.Netns, a.Conntrack.Proto, a.Conntrack.SPort)
		return err
	case a.IPVS != nil:
		return k.IPVS(a.Netns, *a.IPVS)
	case a.Send != nil:
		return errors.New("a sent datagram cannot be replayed")
	}
	return errors.New("empty action")
}

// WriteFault renders what Break did for people.
func WriteFault(w io.Writer, mesh string, f *Fault) {
	fmt.Fprintf(w, "fault %d: %s on %s", f.ID, f.Kind, f.Node)
	if f.Service != "" {
		fmt.Fprintf(w, ", service %s", f.Service)
	}
	if f.Task != "" {
		fmt.Fprintf(w, ", task %s", f.Task)
	}
	fmt.Fprintf(w, "\n  %s\n", f.Detail)
	for _, s := range f.Steps {
		fmt.Fprintf(w, "  did: %s\n", s.Do)
	}
	where := f.Netns
	if f.Port != "" {
		where += ", " + f.Port
	}
	fmt.Fprintf(w, "  doctor must report: %s in %s\n", f.Code, where)
	probe := ""
	if k, err := LookupFault(f.Kind); err == nil && k.Probe {
		probe = " --probe"
	}
	fmt.Fprintf(w, "  see it: meshtrace doctor --mesh %s --node %s%s\n", mesh, f.Node, probe)
	if f.ClientPort != 0 {
		fmt.Fprintf(w, "  datagrams from the client's port %d still follow the stale entry\n", f.ClientPort)
	}
	fmt.Fprintf(w, "  undo: meshtrace mesh repair --name %s\n", mesh)
}

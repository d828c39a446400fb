package fault

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/meshtrace/meshtrace/mesh"
)

// Request says what to break where.
type Request struct {
	Fault   string
	Node    string // "" = the first node
	Service string // "" = the first service the fault can use
}

// Options are Break's and Repair's knobs.
type Options struct {
	RunDir string // "" = mesh.DefaultRunDir
	// Kernel is the machine (nil = NewKernel(state)).
	Kernel *Kernel
}

func (o Options) kernel(st *mesh.State) (*Kernel, error) {
	if o.Kernel != nil {
		return o.Kernel, nil
	}
	return NewKernel(st)
}

// Break injects one fault into mesh name and records how to undo it. A
// fault that fails half way is rolled back.
func Break(name string, req Request, o Options) (*Fault, error) {
	st, err := mesh.Load(o.RunDir, name)
	if err != nil {
		return nil, err
	}
	if st.Phase != mesh.PhaseReady {
		return nil, fmt.Errorf("mesh %s: phase %q: `up` did not finish", name, st.Phase)
	}
	kind, err := Lookup(req.Fault)
	if err != nil {
		return nil, err
	}
	p, err := newPlanner(st, kind, req)
	if err != nil {
		return nil, err
	}
	if p.k, err = o.kernel(st); err != nil {
		return nil, err
	}
	log, unlock, err := lockedLog(st)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := kind.plan(p); err != nil {
		if rerr := undoSteps(p.k, p.f.Steps); rerr != nil {
			err = fmt.Errorf("%w (and rolling back failed: %v)", err, rerr)
		}
		return nil, fmt.Errorf("mesh %s: break %s on %s: %w", name, kind.Name, p.node.Name, err)
	}
	p.f.ID = log.NextID
	p.f.Time = time.Now().UTC().Truncate(time.Second)
	log.NextID++
	log.Faults = append(log.Faults, *p.f)
	if err := log.save(st.Dir); err != nil {
		rerr := undoSteps(p.k, p.f.Steps)
		return nil, fmt.Errorf("mesh %s: record fault: %w (rolled back: %v)", name, err, rerr)
	}
	return p.f, nil
}

// Repair undoes every fault injected into mesh name, newest first, and
// returns them. It stops at the first step that fails; the faults not yet
// undone stay recorded, so repair can be run again.
func Repair(name string, o Options) ([]Fault, error) {
	st, err := mesh.Load(o.RunDir, name)
	if err != nil {
		return nil, err
	}
	log, unlock, err := lockedLog(st)
	if err != nil {
		return nil, err
	}
	defer unlock()
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
func undoSteps(k *Kernel, steps []Step) error {
	var errs []error
	for i := len(steps) - 1; i >= 0; i-- {
		for _, a := range steps[i].Undo {
			if err := a.apply(k); err != nil {
				errs = append(errs, fmt.Errorf("undo %s: %w", a, err))
			}
		}
		if len(errs) > 0 {
			return errors.Join(errs...)
		}
	}
	return nil
}

// Write renders what Break did for people.
func Write(w io.Writer, meshName string, f *Fault) {
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
	if k, err := Lookup(f.Kind); err == nil && k.Probe {
		probe = " --probe"
	}
	fmt.Fprintf(w, "  see it: meshtrace doctor --mesh %s --node %s%s\n", meshName, f.Node, probe)
	if f.ClientPort != 0 {
		fmt.Fprintf(w, "  datagrams from the client's port %d still follow the stale entry\n", f.ClientPort)
	}
	fmt.Fprintf(w, "  undo: meshtrace mesh repair --name %s\n", meshName)
}

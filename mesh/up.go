package mesh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// Options are the knobs of Up, Down and Status.
type Options struct {
	RunDir string // "" = DefaultRunDir
	// Binary is the meshtrace binary that runs the agent ("" = this
	// executable).
	Binary string
	// System is the kernel ("" = the real one, see NewSystem).
	System System
	// Hook, when set, is called before each step of Up: "STEP KEY" for
	// each namespace's steps (see Steps; e.g. "veths node0/ingress_sbox"),
	// concurrently, and "agent" before the agent starts. An error aborts
	// Up, which rolls back. Tests inject failures and stalls with it.
	Hook func(step string) error
	// Parallel bounds the kernel steps (namespace creation, rtnetlink)
	// running at once (0 = a default from the CPU count); iptables-restore
	// runs get a larger pool of their own.
	Parallel int
}

// ErrExists is returned (wrapped) when the mesh name is taken.
var ErrExists = errors.New("mesh already exists")

func (o Options) system() System {
	if o.System != nil {
		return o.System
	}
	return NewSystem()
}

func (o Options) parallel() int {
	if o.Parallel > 0 {
		return o.Parallel
	}
	return 2 * runtime.NumCPU()
}

// ResolveLB turns auto into ipvs or iptables and checks that ipvs is
// possible when asked for.
func ResolveLB(lb string, sys System) (string, error) {
	ok, why := sys.HasIPVS()
	switch lb {
	case LBAuto, "":
		if ok {
			return LBIPVS, nil
		}
		return LBIptables, nil
	case LBIPVS:
		if !ok {
			return "", fmt.Errorf("--lb ipvs: this kernel has no IPVS (%s; `modprobe ip_vs` if it is a module); use --lb iptables", why)
		}
	}
	return lb, nil
}

// Up builds the mesh cfg describes. Everything is validated before the
// kernel is touched; once building starts, any failure (or ctx being
// cancelled) removes whatever was built, so Up leaves either a complete
// mesh or nothing.
func Up(ctx context.Context, cfg Config, o Options) (st *State, err error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sys := o.system()
	if c, ok := sys.(io.Closer); ok && o.System == nil {
		defer c.Close()
	}
	lb, err := ResolveLB(cfg.LB, sys)
	if err != nil {
		return nil, err
	}
	runDir := orDefault(o.RunDir)
	plan, err := NewPlan(cfg, lb, runDir)
	if err != nil {
		return nil, err
	}
	bin := o.Binary
	if bin == "" {
		if bin, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("mesh %s: find the meshtrace binary for the agent: %w", cfg.Name, err)
		}
	}

	// Claim the name: Mkdir fails if another mesh has it.
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return nil, fmt.Errorf("mesh %s: %w", cfg.Name, err)
	}
	if err := os.Mkdir(plan.Dir, 0o755); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("mesh %s: %w (%s; `meshtrace mesh down --name %s` removes it)", cfg.Name, ErrExists, plan.Dir, cfg.Name)
		}
		return nil, fmt.Errorf("mesh %s: %w", cfg.Name, err)
	}
	defer func() {
		if err != nil {
			if _, rerr := sys.Remove(plan.Dir, plan.Name); rerr != nil {
				err = fmt.Errorf("%w (and rolling back failed: %v)", err, rerr)
			}
		}
	}()

	st = plan.State()
	if err := st.Save(); err != nil {
		return nil, err
	}
	specs := plan.Netns()
	for i := range plan.Nodes {
		if err := os.MkdirAll(plan.NetnsDir(i), 0o755); err != nil {
			return nil, fmt.Errorf("mesh %s: %w", cfg.Name, err)
		}
	}

	if err := build(ctx, sys, specs, o.parallel(), o.Hook); err != nil {
		return nil, fmt.Errorf("mesh %s: %w", cfg.Name, err)
	}

	if err := o.hook("agent"); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("mesh %s: %w", cfg.Name, err)
	}
	pid, err := sys.StartAgent(AgentSpec{Binary: bin, Name: plan.Name, RunDir: runDir, Dir: plan.Dir})
	if err != nil {
		return nil, fmt.Errorf("mesh %s: agent: %w", cfg.Name, err)
	}
	st.AgentPID = pid
	st.Phase = PhaseReady
	if err := st.Save(); err != nil {
		return nil, err
	}
	return st, nil
}

func (o Options) hook(phase string) error {
	if o.Hook == nil {
		return nil
	}
	if err := o.Hook(phase); err != nil {
		return fmt.Errorf("before %s: %w", phase, err)
	}
	return nil
}

// Down removes mesh name: its agent, every namespace (and with them every
// link, address, rule and IPVS service) and its directory. It does
// nothing, successfully, when there is nothing left, and refuses a
// directory that does not hold that mesh's state.
func Down(name string, o Options) (Removed, error) {
	if err := ValidName(name); err != nil {
		return Removed{}, err
	}
	sys := o.system()
	if c, ok := sys.(io.Closer); ok && o.System == nil {
		defer c.Close()
	}
	return sys.Remove(filepath.Join(orDefault(o.RunDir), name), name)
}

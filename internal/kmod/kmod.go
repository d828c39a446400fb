// Package kmod tells whether a kernel module is there already, loaded or
// built in, by reading /proc and /sys only, so that meshtrace can skip a
// request that would make the kernel load it. Reading must change nothing
// on the node, and several requests a reader makes load a missing module
// as a side effect (see needs.go): the readers ask a Gate first.
//
// FS takes the root of the procfs/sysfs tree as a parameter (as lxkns's
// discovery takes its procfs root), so tests point it at a committed fake
// tree under testdata.
package kmod

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Gate says whether a module is there already.
type Gate interface {
	// Present reports whether module (- and _ alike) is in the kernel,
	// loaded or built in, so that a request that would load it cannot;
	// on a kernel without loadable modules every module is, in that
	// sense (nothing can be loaded). how says what established the
	// answer, in words that follow "MODULE is ": "loaded (Live in
	// /proc/modules)", "not loaded (not in /proc/modules, not built in)".
	Present(module string) (ok bool, how string)
}

// State is where a module stands.
type State int

const (
	// Unknown: its state could not be read (no /proc, an unreadable
	// /proc/modules). It does not count as present.
	Unknown State = iota
	// Absent: not loaded and not built in; a request can load it.
	Absent
	// Loading: being initialised (Loading in /proc/modules, initstate
	// coming); its subsystem may not answer yet.
	Loading
	// Unloading: being removed (Unloading, initstate going); a request
	// could load it again.
	Unloading
	// Loaded: a loaded module, live.
	Loaded
	// BuiltIn: built into the kernel.
	BuiltIn
	// NoLoader: the kernel has no loadable modules (CONFIG_MODULES=n:
	// no /proc/modules), so whatever it has is built in and a request
	// cannot load anything; the request answers for itself.
	NoLoader
)

// Present is true for the states in which a request loads nothing.
func (s State) Present() bool { return s == Loaded || s == BuiltIn || s == NoLoader }

func (s State) String() string {
	return [...]string{"unknown", "absent", "loading", "unloading", "loaded", "built in", "no module loader"}[s]
}

// FS reads module states from the procfs and sysfs mounted under Root
// ("" or "/": the host's).
type FS struct{ Root string }

var _ Gate = FS{}

// Host is the gate over this host's /proc and /sys, remembering each answer
// (see Memo): make one per read of the node.
func Host() Gate { return Memo(FS{Root: "/"}) }

// Present implements Gate.
func (f FS) Present(module string) (bool, string) {
	s, how := f.State(module)
	return s.Present(), how
}

// State finds module's state, most authoritative source first:
//   - /proc/modules lists every loadable module that is loaded, with its
//     state Live, Loading or Unloading (kernel/module/procfs.c, m_show);
//     the file exists only when the kernel can load modules at all;
//   - /sys/module/NAME is there for a loaded module (with initstate: live,
//     coming or going, kernel/module/sysfs.c show_initstate) and for a
//     built-in one that has parameters or a version (without initstate);
//   - /lib/modules/$(uname -r)/modules.builtin lists the built-in ones;
//   - a file only the subsystem makes (/proc/net/ip_vs for IPVS), for a
//     kernel that ships no modules.builtin.
func (f FS) State(module string) (State, string) {
	name := Name(module)
	mods, err := os.ReadFile(f.path("proc/modules"))
	noLoader := false
	switch {
	case err == nil:
		switch parseProcModules(mods)[name] {
		case "Live":
			return Loaded, "loaded (Live in /proc/modules)"
		case "Loading":
			return Loading, "still loading (Loading in /proc/modules)"
		case "Unloading":
			return Unloading, "being unloaded (Unloading in /proc/modules)"
		}
	case errors.Is(err, fs.ErrNotExist):
		if _, perr := os.Stat(f.path("proc")); perr != nil {
			return Unknown, "of unknown state (no /proc to read)"
		}
		noLoader = true
	default:
		return Unknown, fmt.Sprintf("of unknown state (read /proc/modules: %v)", err)
	}
	sys := "/sys/module/" + name
	if st, err := os.Stat(f.path(sys)); err == nil && st.IsDir() {
		b, err := os.ReadFile(f.path(sys + "/initstate"))
		switch init := strings.TrimSpace(string(b)); {
		case errors.Is(err, fs.ErrNotExist):
			return BuiltIn, fmt.Sprintf("built in (%s without initstate)", sys)
		case err != nil:
			return Unknown, fmt.Sprintf("of unknown state (read %s/initstate: %v)", sys, err)
		case init == "live":
			return Loaded, fmt.Sprintf("loaded (%s/initstate: live)", sys)
		case init == "coming":
			return Loading, fmt.Sprintf("still loading (%s/initstate: coming)", sys)
		default:
			return Unloading, fmt.Sprintf("being unloaded (%s/initstate: %s)", sys, init)
		}
	}
	if file, ok := f.builtin(name); ok {
		return BuiltIn, fmt.Sprintf("built in (%s)", file)
	}
	if file, ok := evidence[name]; ok {
		if _, err := os.Stat(f.path(file)); err == nil {
			return BuiltIn, fmt.Sprintf("built in (%s exists)", file)
		}
	}
	if noLoader {
		return NoLoader, "built in if there at all: the kernel has no loadable modules (no /proc/modules)"
	}
	return Absent, "not loaded (not in /proc/modules, not built in)"
}

// evidence are files only a module's subsystem makes, by module: IPVS's
// /proc/net/ip_vs, which ip_vs_control_net_init (net/netfilter/ipvs/
// ip_vs_ctl.c) makes in every namespace once ip_vs is initialised.
var evidence = map[string]string{"ip_vs": "/proc/net/ip_vs"}

// Name is the kernel's spelling of a module name: - and _ are the same
// character to modprobe and the kernel, which shows _.
func Name(module string) string { return strings.ReplaceAll(module, "-", "_") }

func (f FS) path(p string) string {
	root := f.Root
	if root == "" {
		root = "/"
	}
	return filepath.Join(root, p)
}

// builtin looks name up in modules.builtin of the running kernel
// (release from /proc/sys/kernel/osrelease, as uname -r prints it).
func (f FS) builtin(name string) (string, bool) {
	rel, err := os.ReadFile(f.path("proc/sys/kernel/osrelease"))
	if err != nil {
		return "", false
	}
	for _, dir := range []string{"/lib/modules/", "/usr/lib/modules/"} {
		file := dir + strings.TrimSpace(string(rel)) + "/modules.builtin"
		b, err := os.ReadFile(f.path(file))
		if err != nil {
			continue
		}
		// Lines are paths: kernel/net/packet/af_packet.ko.
		for _, line := range strings.Split(string(b), "\n") {
			base := filepath.Base(strings.TrimSpace(line))
			if Name(strings.TrimSuffix(base, ".ko")) == name {
				return file, true
			}
		}
		return "", false
	}
	return "", false
}

// parseProcModules returns each module's state from /proc/modules: lines
// "name size refcnt deps state address [taints]" (kernel/module/procfs.c,
// m_show).
func parseProcModules(b []byte) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) == 0 {
			continue
		}
		name := Name(fs[0])
		st := ""
		for _, f := range fs[1:] {
			if f == "Live" || f == "Loading" || f == "Unloading" {
				st = f
				break
			}
		}
		out[name] = st
	}
	return out
}

// Allow is the gate of --allow-module-load: every module counts as present.
type Allow struct{}

var _ Gate = Allow{}

// Present implements Gate.
func (Allow) Present(string) (bool, string) {
	return true, "not checked (--allow-module-load)"
}

// Memo remembers g's answers, one question per module: the modules do not
// change in the time one read of a node takes, and many namespaces ask.
// It is safe for concurrent use.
func Memo(g Gate) Gate { return &memo{g: g, m: map[string]answer{}} }

type answer struct {
	ok  bool
	how string
}

type memo struct {
	g  Gate
	mu sync.Mutex
	m  map[string]answer
}

func (m *memo) Present(module string) (bool, string) {
	name := Name(module)
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.m[name]
	if !ok {
		a.ok, a.how = m.g.Present(name)
		m.m[name] = a
	}
	return a.ok, a.how
}

package inspect

import (
	"fmt"
	"io"
	"path"

	"github.com/meshtrace/meshtrace/inspect/parse"
	"github.com/meshtrace/meshtrace/internal/safefile"
	"github.com/meshtrace/meshtrace/topology"
)

// readBundleState reads a namespace folder's optional state files into ns
// (whose links are read already), each as the live reader has it: routes,
// neighbours, the FDB entries keepFDB keeps, the sysctls the live reader
// reads, listening sockets in sortSockets order, conntrack entries, and
// IPVS's timeouts when its table was read. A missing file leaves the field
// nil ("not collected"); an empty one makes it empty.
func readBundleState(b *safefile.Dir, dir string, ns *topology.Namespace) error {
	steps := []func() error{
		func() error {
			return readLines(b, dir, BundleRoutes, ns, parse.IPRoute, func(v []topology.Route) { ns.Routes = v })
		},
		func() error {
			return readLines(b, dir, BundleNeigh, ns, parse.IPNeigh, func(v []topology.Neigh) { ns.Neighbours = v })
		},
		func() error {
			return readLines(b, dir, BundleFDB, ns, parse.BridgeFDB, func(v []topology.FDB) {
				links := make(map[string]*topology.Link, len(ns.Links))
				for _, l := range ns.Links {
					if _, dup := links[l.Name]; !dup { // the first, as ns.Link
						links[l.Name] = l
					}
				}
				ns.FDB = v[:0] // kept in place: v is the parser's own
				for _, e := range v {
					if keepFDB(e, links[e.Dev]) {
						ns.FDB = append(ns.FDB, e)
					}
				}
			})
		},
		func() error {
			return readLines(b, dir, BundleSysctl, ns, parse.Sysctl, func(v topology.Sysctls) {
				ns.Sysctls = topology.Sysctls{}
				for k, val := range v {
					if modelledSysctl(k) {
						ns.Sysctls[k] = val
					}
				}
			})
		},
		func() error {
			return readLines(b, dir, BundleSockets, ns, parse.SS, func(v []topology.Socket) {
				sortSockets(v)
				ns.Sockets = v
			})
		},
		func() error {
			return readLines(b, dir, BundleConntrack, ns, parse.Conntrack, func(v []topology.Conntrack) { ns.Conntrack = v })
		},
		func() error { return readIPVSTimeouts(b, dir, ns) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// readLines reads one optional file with a line-by-line parser and hands
// what it read to set; the lines it did not understand become errors of
// the namespace, each naming file and line.
func readLines[T any](b *safefile.Dir, dir, name string, ns *topology.Namespace, p func(string, io.Reader) (T, []topology.Unparsed, error), set func(T)) error {
	_, err := parseFile(b, path.Join(dir, name), func(file string, r io.Reader) error {
		v, bad, err := p(file, r)
		if err != nil {
			return err
		}
		for _, u := range bad {
			ns.Errors = append(ns.Errors, fmt.Sprintf("%s:%d: not understood (%s): %q", u.File, u.Line, u.Reason, u.Text))
		}
		set(v)
		return nil
	})
	return err
}

// readIPVSTimeouts reads ipvsadm-timeout.txt into the IPVS table read from
// ipvsadm.txt; without a table they have nowhere to go, which is said.
func readIPVSTimeouts(b *safefile.Dir, dir string, ns *topology.Namespace) error {
	_, err := parseFile(b, path.Join(dir, BundleIPVSTimeout), func(file string, r io.Reader) error {
		to, err := parse.IpvsadmTimeout(file, r)
		if err != nil {
			return err
		}
		if ns.IPVS == nil || !ns.IPVS.Available {
			ns.Errors = append(ns.Errors, fmt.Sprintf("%s: IPVS timeouts without an IPVS table (%s): not kept", file, BundleIPVS))
			return nil
		}
		ns.IPVS.Timeouts = to
		return nil
	})
	return err
}

package capture

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/meshtrace/meshtrace/inspect"
	"github.com/meshtrace/meshtrace/internal/kmod"
	"github.com/meshtrace/meshtrace/internal/netnsx"
	"github.com/meshtrace/meshtrace/topology"
	"github.com/meshtrace/meshtrace/trace"
)

// Kernel reads conntrack (inspect's reader) and /proc/net/ip_vs_conn,
// each inside the namespace.
type Kernel struct {
	// Modules is the module gate asked before the ctnetlink dump, which
	// would load nf_conntrack_netlink (kmod.NeedConntrack); nil =
	// kmod.Host(). Reading /proc/net/ip_vs_conn loads nothing.
	Modules kmod.Gate
}

var _ Tables = Kernel{}

// Conntrack implements Tables with inspect.ReadConntrack, the live
// reader's rules included (an empty table is not dumped); with a module
// missing it reads nothing and says why (a note of the trace: the entries
// are not collected).
func (k Kernel) Conntrack(netnsPath string) ([]topology.Conntrack, error) {
	return inspect.ReadConntrack(netnsPath, k.Modules)
}

// IPVSConns implements Tables: nil without an error when the kernel has no
// IPVS.
func (Kernel) IPVSConns(netnsPath string) ([]trace.IPVSConn, error) {
	var b []byte
	err := netnsx.Do(netnsPath, func() error {
		var err error
		b, err = os.ReadFile("/proc/thread-self/net/ip_vs_conn")
		return err
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ip_vs_conn in %s: %w", netnsPath, err)
	}
	return trace.ParseIPVSConn(netnsPath+":/proc/net/ip_vs_conn", bytes.NewReader(b))
}

package fault

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/safchain/ethtool"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/meshtrace/meshtrace/internal/netnsx"
)

// nic is a link's offload settings (ethtool ioctls from a socket opened
// inside the namespace) and its tc programs (rtnetlink inside it; the
// program itself is loaded with the bpf syscall, which is not per
// namespace, and lives as long as a filter holds it).
type nic struct{ meshOnly }

var _ NIC = nic{}

// txChecksumFeature is the TX checksum offload of a link whose "hardware"
// checksums any protocol (NETIF_F_HW_CSUM): veths, bridges, VXLAN.
const txChecksumFeature = "tx-checksum-ip-generic"

// badChecksumFilter names the tc filter the program is attached as.
const badChecksumFilter = "meshtrace-bad-checksum"

// withEthtool opens an ethtool socket inside the namespace: its ioctls
// name links of that namespace.
func withEthtool(netns string, fn func(*ethtool.Ethtool) error) error {
	var e *ethtool.Ethtool
	if err := netnsx.Do(netns, func() (err error) { e, err = ethtool.NewEthtool(); return }); err != nil {
		return fmt.Errorf("ethtool in %s: %w", netns, err)
	}
	defer e.Close()
	return fn(e)
}

func (k nic) TxChecksum(netns, dev string) (bool, error) {
	if err := k.mine(netns); err != nil {
		return false, err
	}
	var on bool
	err := withEthtool(netns, func(e *ethtool.Ethtool) error {
		fs, err := e.Features(dev)
		if err != nil {
			return fmt.Errorf("features of %s: %w", dev, err)
		}
		v, ok := fs[txChecksumFeature]
		if !ok {
			return fmt.Errorf("link %s has no feature %s", dev, txChecksumFeature)
		}
		on = v
		return nil
	})
	return on, err
}

func (k nic) SetTxChecksum(netns, dev string, on bool) error {
	if err := k.mine(netns); err != nil {
		return err
	}
	return withEthtool(netns, func(e *ethtool.Ethtool) error {
		if err := e.Change(dev, map[string]bool{txChecksumFeature: on}); err != nil {
			return fmt.Errorf("ethtool -K %s %s %v: %w", dev, txChecksumFeature, on, err)
		}
		return nil
	})
}

func (k nic) Clsact(netns, dev string) (bool, error) {
	if err := k.mine(netns); err != nil {
		return false, err
	}
	found := false
	err := withLink(netns, dev, func(h *netlink.Handle, link netlink.Link) error {
		qs, err := h.QdiscList(link)
		if err != nil {
			return fmt.Errorf("qdiscs of %s: %w", dev, err)
		}
		for _, q := range qs {
			if q.Type() == "clsact" {
				found = true
			}
		}
		return nil
	})
	return found, err
}

func clsact(link netlink.Link) *netlink.GenericQdisc {
	return &netlink.GenericQdisc{QdiscType: "clsact", QdiscAttrs: netlink.QdiscAttrs{
		LinkIndex: link.Attrs().Index, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT}}
}

func (k nic) SetBadChecksum(netns, dev string, on bool) error {
	if err := k.mine(netns); err != nil {
		return err
	}
	return withLink(netns, dev, func(h *netlink.Handle, link netlink.Link) error {
		if !on {
			if err := h.QdiscDel(clsact(link)); err != nil {
				return fmt.Errorf("tc qdisc del dev %s clsact: %w", dev, err)
			}
			return nil
		}
		prog, err := loadBadChecksum()
		if err != nil {
			return err
		}
		defer prog.Close() // the filter keeps its own reference
		if err := h.QdiscAdd(clsact(link)); err != nil {
			return fmt.Errorf("tc qdisc add dev %s clsact: %w", dev, err)
		}
		f := &netlink.BpfFilter{
			FilterAttrs: netlink.FilterAttrs{LinkIndex: link.Attrs().Index, Parent: netlink.HANDLE_MIN_INGRESS,
				Handle: netlink.MakeHandle(0, 1), Protocol: unix.ETH_P_ALL, Priority: 1},
			Fd: prog.FD(), Name: badChecksumFilter, DirectAction: true,
		}
		if err := h.FilterAdd(f); err != nil {
			err = fmt.Errorf("tc filter add dev %s ingress bpf %s: %w", dev, badChecksumFilter, err)
			if derr := h.QdiscDel(clsact(link)); derr != nil {
				err = errors.Join(err, fmt.Errorf("and removing the qdisc again: %w", derr))
			}
			return err
		}
		return nil
	})
}

// loadBadChecksum loads the program (badChecksumProgram) into the kernel.
func loadBadChecksum() (*ebpf.Program, error) {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "mt_bad_csum", Type: ebpf.SchedCLS,
		License: "GPL", Instructions: badChecksumProgram()})
	if err != nil {
		return nil, fmt.Errorf("load the %s program: %w", ProgramBadChecksum, err)
	}
	return prog, nil
}

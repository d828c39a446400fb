package fault

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/meshtrace/meshtrace/internal/netnsx"
)

// sysctls reads and writes /proc/sys from a thread inside the namespace:
// /proc/sys/net shows the namespace of the thread that opens the file.
type sysctls struct{ meshOnly }

var _ Sysctls = sysctls{}

func (k sysctls) Sysctl(netns, key string) (string, error) {
	if err := k.mine(netns); err != nil {
		return "", err
	}
	var v string
	err := netnsx.Do(netns, func() error {
		b, err := os.ReadFile(filepath.Join("/proc/sys", key))
		v = strings.TrimSpace(string(b))
		return err
	})
	return v, err
}

func (k sysctls) SysctlGlob(netns, pattern string) (map[string]string, error) {
	if err := k.mine(netns); err != nil {
		return nil, err
	}
	out := map[string]string{}
	err := netnsx.Do(netns, func() error {
		files, err := filepath.Glob(filepath.Join("/proc/sys", pattern))
		if err != nil {
			return err
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			out[strings.TrimPrefix(f, "/proc/sys/")] = strings.TrimSpace(string(b))
		}
		return nil
	})
	return out, err
}

func (k sysctls) SetSysctl(netns, key, value string) error {
	if err := k.mine(netns); err != nil {
		return err
	}
	return netnsx.Do(netns, func() error {
		return os.WriteFile(filepath.Join("/proc/sys", key), []byte(value), 0)
	})
}

// links talks rtnetlink inside the namespace.
type links struct{ meshOnly }

var _ Links = links{}

func (k links) Link(netns, name string) (LinkOp, error) {
	if err := k.mine(netns); err != nil {
		return LinkOp{}, err
	}
	var l LinkOp
	err := withLink(netns, name, func(_ *netlink.Handle, link netlink.Link) error {
		a := link.Attrs()
		l = LinkOp{Name: name, MTU: a.MTU, GSOMaxSegs: int(a.GSOMaxSegs)}
		return nil
	})
	return l, err
}

func (k links) SetLink(netns string, l LinkOp) error {
	if err := k.mine(netns); err != nil {
		return err
	}
	return withLink(netns, l.Name, func(h *netlink.Handle, link netlink.Link) error {
		if l.MTU > 0 {
			if err := h.LinkSetMTU(link, l.MTU); err != nil {
				return fmt.Errorf("link %s mtu %d: %w", l.Name, l.MTU, err)
			}
		}
		if l.GSOMaxSegs > 0 {
			if err := h.LinkSetGSOMaxSegs(link, l.GSOMaxSegs); err != nil {
				return fmt.Errorf("link %s gso_max_segs %d: %w", l.Name, l.GSOMaxSegs, err)
			}
		}
		return nil
	})
}

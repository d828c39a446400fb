package mesh

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"

	"github.com/meshtrace/meshtrace/internal/netnsx"
	"github.com/moby/ipvs"
	"golang.org/x/sys/unix"
)

// Firewall runs one iptables-restore inside the namespace, rules on stdin.
func (s *linuxSystem) Firewall(path, rules string) error { return Restore(path, rules) }

// Restore runs `iptables-restore ARGS...` (--noflush, say) inside the
// namespace at path with rules on stdin; its error carries what
// iptables-restore said.
func Restore(path, rules string, args ...string) error {
	return restore("iptables-restore", path, rules, args...)
}

// RestoreLegacy is Restore into the legacy backend (x_tables), with
// iptables-legacy-restore.
func RestoreLegacy(path, rules string, args ...string) error {
	return restore("iptables-legacy-restore", path, rules, args...)
}

func restore(bin, path, rules string, args ...string) error {
	var out bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdin = strings.NewReader(rules)
	cmd.Stdout, cmd.Stderr = &out, &out
	name := strings.Join(append([]string{bin}, args...), " ")
	if err := netnsx.Start(path, cmd); err != nil {
		return fmt.Errorf("%s in %s: %w", name, path, err)
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("%s in %s: %w: %s", name, path, err, strings.TrimSpace(out.String()))
	}
	return nil
}

// IPVS programs firewall-mark services with one masquerading real server per
// destination, port 0 (the destination port is left alone), weight 1 —
// what libnetwork does for the ingress sandbox. The generic netlink socket
// is opened inside the namespace and keeps talking to it afterwards.
func (s *linuxSystem) IPVS(path string, svcs []IPVSSpec) error {
	h, err := IPVSHandle(path)
	if err != nil {
		return err
	}
	defer h.Close()
	for _, sv := range svcs {
		svc := &ipvs.Service{FWMark: sv.FWMark, AddressFamily: unix.AF_INET, SchedName: sv.Scheduler}
		if err := h.NewService(svc); err != nil {
			return fmt.Errorf("ipvs FWM %d in %s: %w", sv.FWMark, path, err)
		}
		for _, d := range sv.Dests {
			dst := &ipvs.Destination{Address: d.AsSlice(), Port: 0, Weight: 1,
				ConnectionFlags: ipvs.ConnectionFlagMasq, AddressFamily: unix.AF_INET}
			if err := h.NewDestination(svc, dst); err != nil {
				return fmt.Errorf("ipvs FWM %d real server %s in %s: %w", sv.FWMark, d, path, err)
			}
		}
	}
	return nil
}

// IPVSHandle opens an IPVS generic netlink socket inside the namespace at
// path; it keeps talking to that namespace. Close it.
func IPVSHandle(path string) (*ipvs.Handle, error) {
	var h *ipvs.Handle
	err := netnsx.Do(path, func() error {
		var err error
		h, err = ipvs.New("")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("ipvs in %s: %w", path, err)
	}
	return h, nil
}

package nft

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/meshtrace/meshtrace/internal/netnsx"
)

// ipset's getsockopt interface (include/uapi/linux/netfilter/ipset/ip_set.h),
// which iptables' libxt_set uses to turn a set index into its name.
const (
	soIPSet           = 83         // SO_IP_SET
	ipSetOpVersion    = 0x00000100 // IP_SET_OP_VERSION: struct ip_set_req_version { unsigned op, version; }
	ipSetOpGetByIndex = 0x00000007 // IP_SET_OP_GET_BYINDEX: struct ip_set_req_get_set
	ipSetMaxNameLen   = 32         // IPSET_MAXNAMELEN
)

// setNames looks the indexes up inside the namespace as libxt_set.h's
// get_set_byid does: a raw IPv4 socket there, IP_SET_OP_VERSION for the
// protocol version, then IP_SET_OP_GET_BYINDEX per index (struct
// ip_set_req_get_set { unsigned op, version; union { char name[32];
// ip_set_id_t index; } set; }), which answers an empty name for an index
// without a set.
func (kernel) setNames(nsPath string, ids []uint16) (map[uint16]string, error) {
	names := map[uint16]string{}
	err := netnsx.Do(nsPath, func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
		if err != nil {
			return fmt.Errorf("raw socket for ipset: %w", err)
		}
		defer unix.Close(fd)
		var ver [8]byte
		ne.PutUint32(ver[0:], ipSetOpVersion)
		if err := ipsetSockopt(fd, ver[:]); err != nil {
			return fmt.Errorf("ipset protocol version: %w", err)
		}
		for _, id := range ids {
			var req [8 + ipSetMaxNameLen]byte
			ne.PutUint32(req[0:], ipSetOpGetByIndex)
			copy(req[4:8], ver[4:8])
			ne.PutUint16(req[8:], id)
			if err := ipsetSockopt(fd, req[:]); err != nil {
				return fmt.Errorf("ipset name of index %d: %w", id, err)
			}
			if name := cString(req[8:]); name != "" {
				names[id] = name
			}
		}
		return nil
	})
	if err != nil {
		return names, fmt.Errorf("netns %s: %w", nsName(nsPath), err)
	}
	return names, nil
}

// ipsetSockopt is getsockopt(fd, SOL_IP, SO_IP_SET, b, len(b)): the
// request goes in b and the kernel's answer comes back in it.
func ipsetSockopt(fd int, b []byte) error {
	size := uint32(len(b))
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_IP, soIPSet,
		uintptr(unsafe.Pointer(&b[0])), uintptr(unsafe.Pointer(&size)), 0)
	if errno != 0 {
		return errno
	}
	if int(size) != len(b) {
		return fmt.Errorf("the kernel answered %d bytes, want %d", size, len(b))
	}
	return nil
}

package inspect

import (
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/meshtrace/meshtrace/internal/netnsx"
	"github.com/meshtrace/meshtrace/internal/testutil"
)

// TestNetnsIDSession: the session's raw RTM_GETNSID answers what
// vishvananda/netlink's GetNetNsIdByFd answers, for a namespace with a
// netnsid (the far end of a veth) and one without (-1), asked from two
// namespaces in turn and again.
func TestNetnsIDSession(t *testing.T) {
	a, b, c := testutil.Netns(t), testutil.Netns(t), testutil.Netns(t)
	bh, err := netnsx.Open(b)
	if err != nil {
		t.Fatal(err)
	}
	defer bh.Close()
	err = netnsx.Do(a, func() error {
		return netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "v0"}, PeerName: "v1",
			PeerNamespace: netlink.NsFd(int(bh))})
	})
	if err != nil {
		t.Fatal(err)
	}
	lib := func(from, to string) int {
		t.Helper()
		fd, err := netnsx.Open(to)
		if err != nil {
			t.Fatal(err)
		}
		defer fd.Close()
		id := -2
		err = netnsx.Do(from, func() error {
			h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
			if err != nil {
				return err
			}
			defer h.Close()
			id, err = h.GetNetNsIdByFd(int(fd))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	s := kernelLinks{}.netnsIDs()
	defer s.close()
	ids := 0
	for range 2 {
		for _, q := range [][2]string{{a, b}, {a, c}, {b, a}, {b, c}, {a, b}} {
			got, err := s.ask(netnsRef("", q[0]), netnsRef("", q[1]))
			if err != nil {
				t.Fatal(err)
			}
			if want := lib(q[0], q[1]); got != want {
				t.Errorf("netnsid of %s in %s: session %d, library %d", q[1], q[0], got, want)
			}
			if got >= 0 {
				ids++
			}
		}
	}
	if ids == 0 {
		t.Error("no question had a netnsid to answer: the veth gave none")
	}
}

package trace

import (
	"net"
	"net/netip"
	"time"

	"github.com/meshtrace/meshtrace/internal/netnsx"
)

// dialIn opens a connection from inside the namespace at netns: the
// socket is created there and stays there once the thread moves back.
func dialIn(netns, network string, to netip.AddrPort, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := netnsx.Do(netns, func() error {
		var err error
		c, err = net.DialTimeout(network, to.String(), timeout)
		return err
	})
	return c, err
}

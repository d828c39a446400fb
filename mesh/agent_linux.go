package mesh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/net/ipv4"
)

// maxBodySize caps ?size=N.
const maxBodySize = 64 << 20

// RunAgent is the mesh's agent (started by StartAgent in a session of its
// own): it opens every task's server socket inside
// the task's namespace (TCP: HTTP, UDP: a datagram echo of the task's
// identity), writes agent.ready, reports "ready" on ready (if not nil) and
// serves until ctx ends. On SIGUSR1 it re-reads tasks.control, the channel
// through which `mesh break` stops a task's server or makes it hang.
//
// It first closes every descriptor it inherited but its standard ones and
// ready: its caller's pipes (`meshtrace mesh up | tail -1`) must not stay
// open for as long as the mesh lives.
func RunAgent(ctx context.Context, runDir, name string, ready io.WriteCloser) error {
	var keep []int
	if f, ok := ready.(*os.File); ok && f != nil {
		keep = append(keep, int(f.Fd()))
	}
	if err := closeInherited(keep...); err != nil {
		return fmt.Errorf("agent %s: %w", name, err)
	}
	st, err := Load(runDir, name)
	if err != nil {
		return err
	}
	logger := log.New(os.Stderr, "agent "+name+": ", log.LstdFlags)
	// `mesh break` talks to the agent through tasks.control and SIGUSR1
	// (see tasks_linux.go): listen for it before saying ready.
	control := make(chan os.Signal, 1)
	signal.Notify(control, syscall.SIGUSR1)
	defer signal.Stop(control)
	servers := newTaskServers(st, logger)
	defer servers.closeAll()
	if err := servers.serveAll(); err != nil {
		return err
	}
	servers.apply()
	readyFile := filepath.Join(st.Dir, agentReady)
	if err := os.WriteFile(readyFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return err
	}
	defer os.Remove(readyFile)
	logger.Printf("serving %d tasks", len(servers.servers))
	if ready != nil {
		fmt.Fprintln(ready, "ready")
		ready.Close()
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-control:
			servers.apply()
		}
	}
}

// Identity is what a task's server says about itself.
type Identity struct {
	Task, Node, Netns, IP string
}

// text is the reply body: the task name on the first line.
func (id Identity) text(remote, local string) string {
	return fmt.Sprintf("%s\nnode: %s\nnetns: %s\nip: %s\nremote: %s\nlocal: %s\n", id.Task, id.Node, id.Netns, id.IP, remote, local)
}

func httpHandler(id Identity) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		local := ""
		if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			local = a.String()
		}
		body := id.text(r.RemoteAddr, local)
		size := len(body)
		if q := r.URL.Query().Get("size"); q != "" {
			n, err := strconv.Atoi(q)
			if err != nil || n < 0 || n > maxBodySize {
				http.Error(w, fmt.Sprintf("%s\nsize %q: want 0-%d\n", id.Task, q, maxBodySize), http.StatusBadRequest)
				return
			}
			size = max(n, len(body))
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", strconv.Itoa(size))
		io.WriteString(w, body)
		pad(w, size-len(body))
	})
}

// pad writes n filler bytes in lines of 64.
func pad(w io.Writer, n int) {
	line := []byte("...............................................................\n")
	for n > 0 {
		k := min(n, len(line))
		if k < len(line) {
			w.Write(line[len(line)-k:])
		} else {
			w.Write(line)
		}
		n -= k
	}
}

// serveUDP answers each datagram with the task's identity, read and
// answered in batches (recvmmsg, sendmmsg: a few system calls for up to
// udpBatch datagrams, so under load the mesh's kernel path, not its echo
// server, is what a trace is measured against). The answer for a remote
// is made once (cached, a bounded number of remotes).
func serveUDP(pc net.PacketConn, id Identity) {
	if uc, ok := pc.(*net.UDPConn); ok {
		uc.SetReadBuffer(4 << 20) // capped by net.core.rmem_max
	}
	local := pc.LocalAddr().String()
	answers := map[netip.AddrPort][]byte{}
	answer := func(from net.Addr) []byte {
		ua, ok := from.(*net.UDPAddr)
		if !ok {
			return []byte(id.text(from.String(), local))
		}
		k := ua.AddrPort()
		b, ok := answers[k]
		if !ok {
			if len(answers) >= 4096 {
				clear(answers)
			}
			b = []byte(id.text(from.String(), local))
			answers[k] = b
		}
		return b
	}
	c := ipv4.NewPacketConn(pc)
	in := make([]ipv4.Message, udpBatch)
	out := make([]ipv4.Message, udpBatch)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, 2048)}
		out[i].Buffers = make([][]byte, 1)
	}
	for {
		n, err := c.ReadBatch(in, 0)
		if err != nil {
			return
		}
		for i := range n {
			out[i].Buffers[0], out[i].Addr = answer(in[i].Addr), in[i].Addr
		}
		for sent := 0; sent < n; {
			k, err := c.WriteBatch(out[sent:n], 0)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				k = 1 // a datagram the kernel refused: skip it
			}
			sent += k
		}
	}
}

// udpBatch is how many datagrams serveUDP reads and answers at once.
const udpBatch = 64

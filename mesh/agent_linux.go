package mesh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/meshtrace/meshtrace/internal/netnsx"
)

// maxBodySize caps ?size=N.
const maxBodySize = 64 << 20

// RunAgent is the mesh's agent: it opens every task's server socket inside
// the task's namespace (TCP: HTTP, UDP: a datagram echo of the task's
// identity), writes agent.ready, reports "ready" on ready (if not nil) and
// serves until ctx ends.
func RunAgent(ctx context.Context, runDir, name string, ready io.WriteCloser) error {
	st, err := Load(runDir, name)
	if err != nil {
		return err
	}
	logger := log.New(os.Stderr, "agent "+name+": ", log.LstdFlags)
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	var wg sync.WaitGroup
	for _, s := range st.Services {
		for _, t := range s.Tasks {
			id := Identity{Task: t.Name, Node: t.Node, Netns: filepath.Base(t.Netns), IP: t.IP.String()}
			addr := ":" + strconv.Itoa(s.Target)
			if s.Proto == "udp" {
				var pc net.PacketConn
				err := netnsx.Do(t.Netns, func() (err error) { pc, err = net.ListenPacket("udp4", addr); return })
				if err != nil {
					return fmt.Errorf("task %s: listen udp%s in %s: %w", t.Name, addr, t.Netns, err)
				}
				closers = append(closers, pc)
				wg.Add(1)
				go func() { defer wg.Done(); serveUDP(pc, id) }()
				continue
			}
			var ln net.Listener
			err := netnsx.Do(t.Netns, func() (err error) { ln, err = net.Listen("tcp4", addr); return })
			if err != nil {
				return fmt.Errorf("task %s: listen tcp%s in %s: %w", t.Name, addr, t.Netns, err)
			}
			srv := &http.Server{Handler: httpHandler(id), ReadHeaderTimeout: 10 * time.Second,
				IdleTimeout: 30 * time.Second, ErrorLog: logger}
			closers = append(closers, srv)
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
					logger.Printf("task %s: %v", id.Task, err)
				}
			}()
		}
	}
	readyFile := filepath.Join(st.Dir, agentReady)
	if err := os.WriteFile(readyFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return err
	}
	defer os.Remove(readyFile)
	logger.Printf("serving %d tasks", len(closers))
	if ready != nil {
		fmt.Fprintln(ready, "ready")
		ready.Close()
	}
	<-ctx.Done()
	for _, c := range closers {
		c.Close()
	}
	closers = nil
	wg.Wait()
	return nil
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

func serveUDP(pc net.PacketConn, id Identity) {
	buf := make([]byte, 2048)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		_ = n
		pc.WriteTo([]byte(id.text(from.String(), pc.LocalAddr().String())), from)
	}
}

package capture

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/meshtrace/meshtrace/internal/addrplan"
	"github.com/meshtrace/meshtrace/internal/dockerns"
	"github.com/meshtrace/meshtrace/internal/dockerrules"
	"github.com/meshtrace/meshtrace/internal/netnsx"
	"github.com/meshtrace/meshtrace/internal/testutil"
	"github.com/meshtrace/meshtrace/source"
	"github.com/meshtrace/meshtrace/topology"
	"github.com/meshtrace/meshtrace/trace"
)

// world is a one-node Docker-shaped mesh (internal/dockerns with the
// iptables load balancer: host DNAT, sandbox mark + DNAT + SNAT, task
// REDIRECT) with a client namespace on the node's uplink and a server in
// every task answering its name: HTTP on 80, UDP on 53.
type world struct {
	*dockerns.World
	client string // client netns file
	node   netip.Addr
	cli    netip.Addr
}

var (
	worldNode   = dockerns.NodeIP.Addr()
	worldClient = addrplan.ClientIP
)

func newWorld(t *testing.T) *world {
	t.Helper()
	testutil.NeedRoot(t)
	w, err := dockerns.Build(dockerns.Options{Prefix: testutil.Prefix(), Emulate: true, Ports: []dockerrules.Port{
		{Proto: "tcp", Published: 8080, Target: 80}, {Proto: "udp", Published: 5353, Target: 53}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Errorf("world teardown: %v", err)
		}
	})
	wd := &world{World: w, client: filepath.Join(w.Base, "client"), node: worldNode, cli: worldClient}
	if err := netnsx.Create(wd.client); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { netnsx.Destroy(wd.client) })
	// The host's uplink is a veth whose other end (underlay0) stays in
	// the host: move that end into the client.
	err = netnsx.Do(w.HostPath, func() error {
		l, err := netlink.LinkByName("underlay0")
		if err != nil {
			return err
		}
		h, err := netns.GetFromPath(wd.client)
		if err != nil {
			return err
		}
		defer h.Close()
		return netlink.LinkSetNsFd(l, int(h))
	})
	if err != nil {
		t.Fatalf("move underlay0 to the client: %v", err)
	}
	err = netnsx.Do(wd.client, func() error {
		l, err := netlink.LinkByName("underlay0")
		if err != nil {
			return err
		}
		if err := netlink.LinkSetName(l, "eth0"); err != nil {
			return err
		}
		if err := netlink.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: worldClient.AsSlice(), Mask: net.CIDRMask(24, 32)}}); err != nil {
			return err
		}
		lo, _ := netlink.LinkByName("lo")
		netlink.LinkSetUp(lo)
		return netlink.LinkSetUp(l)
	})
	if err != nil {
		t.Fatalf("client netns: %v", err)
	}
	for _, task := range w.Tasks {
		serve(t, filepath.Join(w.Dir, task.Name), task.IngressIP, "task-"+task.Name[:4])
	}
	return wd
}

// serve answers HTTP on ip:80 and UDP on ip:53 with the task's name,
// from sockets opened inside its namespace.
func serve(t *testing.T, path string, ip netip.Addr, name string) {
	t.Helper()
	var ln net.Listener
	var pc net.PacketConn
	err := netnsx.Do(path, func() error {
		var err error
		if ln, err = net.Listen("tcp4", netip.AddrPortFrom(ip, 80).String()); err != nil {
			return err
		}
		pc, err = net.ListenPacket("udp4", netip.AddrPortFrom(ip, 53).String())
		return err
	})
	if err != nil {
		t.Fatalf("servers in %s: %v", path, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, name+"\n")
	})}
	go srv.Serve(ln)
	go func() {
		buf := make([]byte, 2048)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo([]byte(name+"\n"), from)
		}
	}()
	t.Cleanup(func() { srv.Close(); pc.Close() })
}

// env reads the world's model and the path of proto/port.
func (w *world) env(t *testing.T, proto string, port int) *trace.Env {
	t.Helper()
	m, err := source.Load(context.Background(), source.Spec{HostNetns: w.HostPath, NetnsDirs: []string{w.Dir}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := topology.FindPath(m, topology.Query{Proto: proto, Port: port})
	if err != nil {
		t.Fatal(err)
	}
	return &trace.Env{Proto: proto, Port: port, Nodes: []*trace.Node{{Name: "node0", Model: m, Path: p, Addr: w.node}}}
}

// iptables runs iptables in one of the world's namespaces.
func (w *world) iptables(t *testing.T, netnsName string, args ...string) {
	t.Helper()
	path := filepath.Join(w.Dir, netnsName)
	if netnsName == "host" {
		path = w.HostPath
	}
	out, err := netnsx.Output(path, exec.Command("iptables", append([]string{"-w"}, args...)...))
	if err != nil {
		var ee *exec.ExitError
		msg := ""
		if ok := asExit(err, &ee); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("iptables %s in %s: %v %s %s", strings.Join(args, " "), netnsName, err, out, msg)
	}
}

func asExit(err error, ee **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	if ok {
		*ee = e
	}
	return ok
}

func dumpResult(t *testing.T, r *trace.Result) {
	t.Helper()
	var b strings.Builder
	trace.WriteText(&b, r)
	t.Logf("result:\n%s", b.String())
	if os.Getenv("TRACE_JSON") != "" {
		var j strings.Builder
		trace.WriteJSON(&j, r)
		t.Logf("json:\n%s", j.String())
	}
}

func netipAP(a netip.Addr, port uint16) netip.AddrPort { return netip.AddrPortFrom(a, port) }

// hostUplink is the host's uplink as trace's plan picks it.
func hostUplink(host *topology.Namespace) *topology.Link {
	_, l := topology.NodeAddress(host)
	return l
}

package capture

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/meshtrace/meshtrace/internal/netnsx"
	"github.com/meshtrace/meshtrace/internal/probe"
	"github.com/meshtrace/meshtrace/mesh"
	"github.com/meshtrace/meshtrace/mesh/fault"
	"github.com/meshtrace/meshtrace/trace"
)

// lossCase is a fault of `mesh break --list` and the cause trace --probe
// must name from the counters.
type lossCase struct {
	fault string
	want  trace.LossCode
	// args are trace's extra arguments (mtu: a large answer).
	args []string
	// traffic, when set, replaces --probe: it makes the traffic the
	// fault loses while trace captures.
	traffic func(t *testing.T, e *lossEnv)
	// doctor: doctor --probe probes the port with the fault in place (the
	// model's path looks complete) and must name the same cause.
	doctor bool
}

var lossCases = []lossCase{
	{fault: "block-vxlan", want: trace.LossRuleDrop, doctor: true},
	{fault: "task-drop", want: trace.LossRuleDrop},
	{fault: "forward-drop", want: trace.LossPolicyDrop},
	{fault: "rp-filter", want: trace.LossRPFilter, traffic: spoofedSYNs},
	{fault: "mtu", want: trace.LossMTU, args: []string{"--probe-path", "/?size=200000"}},
	{fault: "stop-task", want: trace.LossNoListener, doctor: true},
}

type lossEnv struct {
	name string
	st   *mesh.State
}

// lossRow is one line of the printed matrix.
type lossRow struct {
	fault, want, got, doctor, at string
}

// TestLossMatrix breaks the built-in mesh with every fault of `mesh break
// --list` (one mesh, repaired between faults), traces a probe through it
// and checks that the flow that stopped names the cause from the kernel's
// counters: the table of issue 17 at least, and, for every fault, no
// cause whose counter did not move. A healthy mesh under background
// traffic claims no cause, before and after.
func TestLossMatrix(t *testing.T) {
	name, _ := meshUp(t, "web:8080:80x2", "dns:5353:53/udpx2")
	st, err := mesh.Load("", name)
	if err != nil {
		t.Fatal(err)
	}
	e := &lossEnv{name: name, st: st}
	healthyUnderTraffic(t, e, "healthy mesh")

	var rows []lossRow
	defer func() {
		var b strings.Builder
		fmt.Fprintf(&b, "%-16s %-24s %-24s %-28s %s\n", "FAULT", "WANT", "TRACE", "DOCTOR --PROBE", "WHERE")
		for _, r := range rows {
			fmt.Fprintf(&b, "%-16s %-24s %-24s %-28s %s\n", r.fault, r.want, r.got, r.doctor, r.at)
		}
		t.Logf("loss matrix:\n%s", b.String())
	}()
	cases := map[string]lossCase{}
	for _, c := range lossCases {
		cases[c.fault] = c
	}
	for _, k := range fault.Kinds() {
		c, must := cases[k.Name]
		if !must {
			// Pending faults too: doctor has no detector for them yet,
			// the counters may still tell.
			if (k.LB != "" && k.LB != st.LB) || k.Proto == "udp" {
				continue
			}
			c = lossCase{fault: k.Name}
		}
		delete(cases, k.Name)
		row := lossFault(t, e, c)
		rows = append(rows, row)
	}
	for f := range cases {
		t.Errorf("matrix case %s is not a fault of mesh break --list", f)
	}
	healthyUnderTraffic(t, e, "after every fault")
}

// lossFault breaks, traces, asks doctor, repairs.
func lossFault(t *testing.T, e *lossEnv, c lossCase) lossRow {
	row := lossRow{fault: c.fault, want: string(c.want), got: "none", doctor: "-"}
	if out, code := run(t, "mesh", "break", "--name", e.name, c.fault, "--node", "node0"); code != 0 {
		t.Fatalf("mesh break %s: exit %d: %s", c.fault, code, out)
	}
	defer func() {
		if out, code := run(t, "mesh", "repair", "--name", e.name); code != 0 {
			t.Fatalf("mesh repair after %s: exit %d: %s (stopping: the mesh is not clean)", c.fault, code, out)
		}
	}()
	var res *trace.Result
	if c.traffic != nil {
		res = traceWhile(t, e, func() { c.traffic(t, e) })
	} else {
		res = lossTrace(t, append([]string{"trace", "--mesh", e.name, "--node", "node0", "--port", "8080", "--probe", "--count", "2"}, c.args...)...)
	}
	var codes []string
	for _, f := range res.Flows {
		if f.Loss == nil {
			continue
		}
		checkLoss(t, c.fault, f)
		if f.Loss.Cause != nil && !slices.Contains(codes, string(f.Loss.Cause.Code)) {
			codes = append(codes, string(f.Loss.Cause.Code))
			if f.Loss.Cause.Code == c.want || row.at == "" {
				row.at = f.Loss.Summary
			}
		}
	}
	if len(codes) > 0 {
		row.got = strings.Join(codes, ",")
	}
	if c.want != "" && !slices.Contains(codes, string(c.want)) {
		t.Errorf("%s: trace named %v, want %s", c.fault, codes, c.want)
		for _, f := range res.Flows {
			b, _ := json.Marshal(struct {
				Stop *trace.Stop
				Loss *trace.Loss
			}{f.Stop, f.Loss})
			t.Logf("%s: flow %d answered %v: %s", c.fault, f.ID, f.Answered, b)
		}
	}
	if c.doctor {
		row.doctor = doctorCause(t, e, c)
	}
	return row
}

// checkLoss checks what every loss must hold: a cause moved, by what it
// says, and the sentence says "consistent with" or that nothing moved.
func checkLoss(t *testing.T, fault string, f trace.Flow) {
	t.Helper()
	l := f.Loss
	if l.Lost < 1 || l.LostThere < l.Lost || len(l.Netns) == 0 {
		t.Errorf("%s: flow %d: loss %+v", fault, f.ID, l)
	}
	for _, c := range append(l.Also, *cmpOr(l.Cause)) {
		if c.Code != "" && c.Counted < 1 {
			t.Errorf("%s: flow %d: a cause whose counter did not move: %+v", fault, f.ID, c)
		}
	}
	if l.Cause != nil && !strings.Contains(l.Summary, "consistent with") {
		t.Errorf("%s: flow %d: %q", fault, f.ID, l.Summary)
	}
	if l.Cause == nil && !strings.Contains(l.Summary, "no drop counter") && !strings.Contains(l.Summary, "not collected") {
		t.Errorf("%s: flow %d: nothing named, and the summary does not say so: %q", fault, f.ID, l.Summary)
	}
}

func cmpOr(c *trace.LossCause) *trace.LossCause {
	if c == nil {
		return &trace.LossCause{}
	}
	return c
}

// lossTrace runs a trace and reads its JSON (exit 0 or 3: flows stopped).
func lossTrace(t *testing.T, args ...string) *trace.Result {
	t.Helper()
	out, code := run(t, append(args, "-o", "json")...)
	if code != 0 && code != 3 {
		t.Fatalf("meshtrace %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	var r trace.Result
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("meshtrace %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return &r
}

// traceWhile traces port 8080 without a probe while traffic runs (it
// starts once the capture has had time to open its sockets).
func traceWhile(t *testing.T, e *lossEnv, traffic func()) *trace.Result {
	t.Helper()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		time.Sleep(2 * time.Second)
		traffic()
	}()
	res := lossTrace(t, "trace", "--mesh", e.name, "--node", "node0", "--port", "8080", "--count", "0", "--timeout", "6s")
	wg.Wait()
	return res
}

// doctorCause runs doctor --probe and returns the code its probe's
// evidence names, failing the test when it is not the case's. Doctor
// probes a port once and the fault loses one of the two tasks' flows:
// it runs until a probe failed, at most 6 times.
func doctorCause(t *testing.T, e *lossEnv, c lossCase) string {
	t.Helper()
	var r struct {
		Findings []struct {
			Code, Evidence string
		} `json:"findings"`
	}
	for range 6 {
		out, _ := run(t, "doctor", "--mesh", e.name, "--node", "node0", "--probe", "-o", "json")
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatalf("doctor: %v\n%s", err, out)
		}
		for _, f := range r.Findings {
			failed := strings.Contains(f.Evidence, "consistent with") || strings.Contains(f.Evidence, "no drop counter") ||
				strings.Contains(f.Evidence, "counters not collected")
			if !failed {
				continue
			}
			if strings.Contains(f.Evidence, "consistent with") && strings.Contains(f.Evidence, "("+string(c.want)+")") {
				return string(c.want) + " (in " + f.Code + ")"
			}
			t.Errorf("%s: doctor --probe's probe failed and names no %s: %+v", c.fault, c.want, f)
			return "not " + string(c.want)
		}
	}
	t.Errorf("%s: doctor --probe's probe never failed in 6 runs: %+v", c.fault, r.Findings)
	return "no probe failed"
}

// healthyUnderTraffic traces probes while the client makes requests to
// both services on both nodes: every flow is answered and none claims a
// cause.
func healthyUnderTraffic(t *testing.T, e *lossEnv, when string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			n := e.st.Nodes[i%len(e.st.Nodes)]
			proto, port := "tcp", 8080
			if i%2 == 1 {
				proto, port = "udp", 5353
			}
			rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
			_, _ = probe.Do(rctx, probe.Request{Netns: e.st.Client.Netns, Proto: proto, To: netip.AddrPortFrom(n.IP, uint16(port))})
			rcancel()
			time.Sleep(30 * time.Millisecond)
		}
	}()
	res := lossTrace(t, "trace", "--mesh", e.name, "--node", "node0", "--port", "8080", "--probe", "--count", "4")
	cancel()
	wg.Wait()
	if len(res.Flows) < 4 {
		t.Errorf("%s: %d flows, want the 4 probes at least", when, len(res.Flows))
	}
	for _, f := range res.Flows {
		if f.Loss != nil && f.Loss.Cause != nil {
			t.Errorf("%s: flow %d claims a cause: %s", when, f.ID, f.Loss.Summary)
		}
	}
	for _, p := range res.Probes {
		if p.Error != "" {
			t.Errorf("%s: probe failed: %+v", when, p)
		}
	}
}

// spoofedSYNs sends SYNs to the ingress sandbox's published port from
// node0's host namespace with a source on the overlay (10.0.0.99): a
// packet in on the sandbox's gwbridge leg whose way back is the other leg,
// what strict reverse-path filtering drops (asymmetric routing: the
// mesh's own clients come back the way they came, so the fault loses
// nothing of a probe). The same SYN each time: one flow.
func spoofedSYNs(t *testing.T, e *lossEnv) {
	t.Helper()
	host, _, err := mesh.Locate(e.name, "node0")
	if err != nil {
		t.Error(err)
		return
	}
	src, dst := netip.MustParseAddr("10.0.0.99"), netip.MustParseAddr("172.18.0.2")
	pkt := synPacket(src, dst, 40999, 8080)
	err = netnsx.Do(host, func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		to := &unix.SockaddrInet4{Addr: dst.As4()}
		for range 5 {
			if err := unix.Sendto(fd, pkt, 0, to); err != nil {
				return fmt.Errorf("sendto %s: %w", dst, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

// synPacket is an IPv4 TCP SYN with its checksums.
func synPacket(src, dst netip.Addr, sport, dport uint16) []byte {
	b := make([]byte, 40)
	b[0], b[8], b[9] = 0x45, 64, unix.IPPROTO_TCP
	binary.BigEndian.PutUint16(b[2:], 40)
	binary.BigEndian.PutUint16(b[4:], uint16(os.Getpid()))
	s4, d4 := src.As4(), dst.As4()
	copy(b[12:], s4[:])
	copy(b[16:], d4[:])
	binary.BigEndian.PutUint16(b[10:], csum(b[:20], 0))
	tcp := b[20:]
	binary.BigEndian.PutUint16(tcp[0:], sport)
	binary.BigEndian.PutUint16(tcp[2:], dport)
	binary.BigEndian.PutUint32(tcp[4:], 0x1000)
	tcp[12], tcp[13] = 5<<4, 0x02
	binary.BigEndian.PutUint16(tcp[14:], 64240)
	pseudo := uint32(binary.BigEndian.Uint16(s4[:2])) + uint32(binary.BigEndian.Uint16(s4[2:])) +
		uint32(binary.BigEndian.Uint16(d4[:2])) + uint32(binary.BigEndian.Uint16(d4[2:])) + unix.IPPROTO_TCP + 20
	binary.BigEndian.PutUint16(tcp[16:], csum(tcp, pseudo))
	return b
}

func csum(b []byte, sum uint32) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

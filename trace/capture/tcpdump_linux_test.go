package capture

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket/pcapgo"
	"github.com/meshtrace/meshtrace/internal/netnsx"
	"github.com/meshtrace/meshtrace/trace"
	"github.com/meshtrace/meshtrace/trace/pcapio"
)

// tcpdump runs a real tcpdump inside a namespace, writing file, until stop
// is called; it returns once tcpdump listens. Give it time to drain its
// ring before stopping it: on SIGINT it drops what it has not read.
func tcpdump(t *testing.T, netns, file string, args ...string) (stop func()) {
	t.Helper()
	if _, err := exec.LookPath("tcpdump"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("tcpdump is not installed")
		}
		t.Skip("tcpdump is not installed")
	}
	cmd := exec.Command("tcpdump", append([]string{"--immediate-mode", "-U", "-w", file}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := netnsx.Start(netns, cmd); err != nil {
		t.Fatalf("tcpdump in %s: %v", netns, err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := false
		for sc.Scan() {
			if strings.Contains(sc.Text(), "listening on") && !once {
				once = true
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("tcpdump did not start listening")
	}
	done := false
	stop = func() {
		if done {
			return
		}
		done = true
		cmd.Process.Signal(syscall.SIGINT)
		cmd.Wait()
	}
	t.Cleanup(stop)
	return stop
}

// waitQuiet waits until tcpdump has written everything: the files have
// not grown for 1.5 s (tcpdump -U writes each packet as it reads it; on
// SIGINT it drops what is still in its ring, and on a loaded machine — CI
// runs packages in parallel — tcpdump may not be scheduled for a while).
// At most 20 s.
func waitQuiet(files ...string) {
	size := func() int64 {
		var n int64
		for _, f := range files {
			if st, err := os.Stat(f); err == nil {
				n += st.Size()
			}
		}
		return n
	}
	last, since := size(), time.Now()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		if n := size(); n != last {
			last, since = n, time.Now()
		} else if time.Since(since) >= 1500*time.Millisecond {
			return
		}
	}
}

// waitFINs waits until each pcap file holds at least want[file] TCP
// segments with FIN set, or the timeout passes. Loaded CI machines can
// starve tcpdump for seconds, so "quiet for a while" alone is not proof
// that it has written everything.
func waitFINs(timeout time.Duration, want map[string]int) {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		done := true
		for f, n := range want {
			done = done && countFINs(f) >= n
		}
		if done {
			return
		}
	}
}

// countFINs counts FIN segments in a (possibly still growing) pcap file.
func countFINs(file string) int {
	return countTCPIf(file, func(f *trace.Frame) bool { return f.Pkt.Flags&trace.FlagFIN != 0 })
}

// countTCP counts the TCP frames of a pcap file.
func countTCP(file string) int {
	return countTCPIf(file, func(*trace.Frame) bool { return true })
}

func countTCPIf(file string, keep func(*trace.Frame) bool) int {
	fh, err := os.Open(file)
	if err != nil {
		return 0
	}
	defer fh.Close()
	r, err := pcapgo.NewReader(fh)
	if err != nil {
		return 0
	}
	n := 0
	for {
		data, _, err := r.ReadPacketData()
		if err != nil {
			return n
		}
		var f trace.Frame
		if trace.Decode(int(r.LinkType()), data, &f) == nil && f.Pkt.Proto == 6 && keep(&f) {
			n++
		}
	}
}

func TestReplayTcpdumpWorld(t *testing.T) {
	w := newWorld(t)
	dir := t.TempDir()
	if d := os.Getenv("TRACE_KEEP"); d != "" {
		dir = d
	}
	sbox := filepath.Join(w.Dir, "ingress_sbox")
	task := filepath.Join(w.Dir, w.Tasks[0].Name)
	files := map[string]string{
		"sll2": filepath.Join(dir, "sbox-any.pcap"),
		"sll":  filepath.Join(dir, "sbox-any-v1.pcap"),
		"eth":  filepath.Join(dir, "task-eth0.pcap"),
	}
	stops := []func(){
		tcpdump(t, sbox, files["sll2"], "-i", "any", "tcp"),
		tcpdump(t, sbox, files["sll"], "-i", "any", "-y", "LINUX_SLL", "tcp"),
		tcpdump(t, task, files["eth"], "-p", "-i", "eth0", "tcp"),
	}
	// Two connections: round robin sends one to each task.
	env := w.env(t, "tcp", 8080)
	pr := Probe{Netns: w.client, From: "client", To: netipAP(w.node, 8080), Proto: "tcp", Count: 2, Timeout: time.Second}
	for _, r := range pr.Run(context.Background()) {
		if r.Error != "" {
			t.Fatalf("probe: %s", r.Error)
		}
	}
	// Every FIN of both connections, in and out of the sandbox (8), and
	// of the one the first task served (2), must be on disk before
	// tcpdump is stopped: on SIGINT it drops what is still in its ring.
	waitFINs(10*time.Second, map[string]int{files["sll2"]: 8, files["sll"]: 8, files["eth"]: 2})
	waitQuiet(files["sll2"], files["sll"], files["eth"])
	for _, stop := range stops {
		stop()
	}

	for _, kind := range []string{"sll2", "sll"} {
		t.Run(kind, func(t *testing.T) {
			res, err := pcapio.Replay([]string{files[kind]}, env, trace.ReplayOptions{})
			if err != nil {
				t.Fatal(err)
			}
			dumpResult(t, res)
			if len(res.Flows) != 2 {
				t.Fatalf("%d flows, want 2", len(res.Flows))
			}
			// tcpdump -i any in the sandbox now and then loses segments
			// that crossed it when the machine is loaded (seen in CI:
			// a connection's FINs, or its response; the task's own capture
			// and trace's per-interface sockets have them). So the check is
			// on what tcpdump wrote: every TCP frame of the file must be
			// correlated into the two flows, and each flow must show at
			// least its handshake and request.
			sightings := 0
			for _, f := range res.Flows {
				for _, p := range f.Packets {
					sightings += p.Sightings
				}
			}
			if want := countTCP(files[kind]); sightings != want || want == 0 {
				t.Errorf("flows account for %d sightings, the file holds %d TCP frames", sightings, want)
			}
			for _, f := range res.Flows {
				if !f.Answered || f.Backend == nil || f.Backend.Netns == nil || len(f.Packets) < 4 {
					t.Errorf("flow %d: answered %v backend %+v, %d packets", f.ID, f.Answered, f.Backend, len(f.Packets))
				}
				if len(f.Hops) != 2 || f.Hops[0].Netns != "ingress_sbox" || f.Hops[0].Dir != "in" || f.Hops[1].Dir != "out" {
					t.Errorf("flow %d: hops %+v, want in and out of ingress_sbox", f.ID, f.Hops)
				}
				if kind == "sll2" && (f.Hops[0].Ifname != "eth1" || f.Hops[1].Ifname != "eth0") {
					t.Errorf("flow %d: interfaces %s, %s: want eth1 then eth0 (from the SLL2 ifindex)", f.ID, f.Hops[0].Ifname, f.Hops[1].Ifname)
				}
				if r := rewriteOf(f, "ipvs"); r == nil || r.FWMark != 256 || r.Rule == "" {
					t.Errorf("flow %d: ipvs %+v", f.ID, r)
				}
				if r := rewriteOf(f, "snat"); r == nil || r.Rule == "" {
					t.Errorf("flow %d: snat %+v", f.ID, r)
				}
			}
		})
	}

	t.Run("several files", func(t *testing.T) {
		res, err := pcapio.Replay([]string{files["sll2"], files["eth"]}, env, trace.ReplayOptions{Port: 8080})
		if err != nil {
			t.Fatal(err)
		}
		dumpResult(t, res)
		if len(res.Flows) != 2 {
			t.Fatalf("%d flows, want 2", len(res.Flows))
		}
		// One flow went to the task whose eth0 was captured: three hops,
		// the last in the task, with its REDIRECT from the model.
		var seen bool
		for _, f := range res.Flows {
			if len(f.Hops) != 3 {
				continue
			}
			seen = true
			last := f.Hops[2]
			if last.Netns != w.Tasks[0].Name || last.Ifname != "eth0" && last.Ifname != "" || last.Dir != "in" {
				t.Errorf("last hop %+v, want in on %s", last, w.Tasks[0].Name)
			}
			if r := rewriteOf(f, "redirect"); r == nil || r.ToPort != 80 || r.Seen != "model" {
				t.Errorf("redirect %+v", r)
			}
		}
		if !seen {
			t.Errorf("no flow crossed both files")
		}
	})
}

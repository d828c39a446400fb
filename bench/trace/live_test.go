package benchtrace

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/meshtrace/meshtrace/internal/netnsx"
	"github.com/meshtrace/meshtrace/internal/testutil"
	"github.com/meshtrace/meshtrace/trace"
)

// TestLiveUnderLoad runs `meshtrace trace` on a 2-node mesh while a Go load
// loop in the client netns makes HTTP requests (a new connection each) at
// increasing rates, with tcpdump -i any capturing in the same namespaces
// at the same time, and reports per rate: requests answered, trace's
// kernel drops and flows seen at every hop, tcpdump's kernel drops. The
// highest lossless rate of each is the result. MESHTRACE_BENCH=1, root.
func TestLiveUnderLoad(t *testing.T) {
	if os.Getenv("MESHTRACE_BENCH") == "" {
		t.Skip("set MESHTRACE_BENCH=1 to run the live load benchmark")
	}
	testutil.NeedRoot(t)
	bin := testutil.Meshtrace(t)
	name := fmt.Sprintf("bl%d", os.Getpid()%100000)
	sh(t, bin, "mesh", "down", "--name", name)
	sh(t, bin, "mesh", "up", "--name", name, "--nodes", "2", "--lb", "iptables", "--service", "web:8080:80x2")
	defer sh(t, bin, "mesh", "down", "--name", name)
	dir := "/run/meshtrace/" + name
	var nss []string
	for _, node := range []string{"node0", "node1"} {
		nss = append(nss, filepath.Join(dir, node, "host"))
		ents, _ := os.ReadDir(filepath.Join(dir, node, "netns"))
		for _, e := range ents {
			nss = append(nss, filepath.Join(dir, node, "netns", e.Name()))
		}
	}
	// The highest rate such that it and every lower rate lost nothing.
	var best, bestDump int
	okTrace, okDump := true, true
	const d = 2 * time.Second
	for _, rate := range []int{100, 250, 500, 1000, 2000, 4000} {
		r := loadRound(t, bin, name, dir+"/client", nss, rate, d)
		got := int(float64(r.answered) / d.Seconds())
		t.Logf("%5d req/s asked, %d achieved: %d requests, %d answered; trace: %d flows, %d seen at every hop, %d kernel drops; tcpdump -i any in %d netns: %d kernel drops",
			rate, got, r.sent, r.answered, r.flows, r.full, r.drops, len(nss), r.dumpDrops)
		fmt.Printf("live %d req/s (achieved %d): trace drops %d, flows complete at every hop %d/%d; tcpdump drops %d\n", rate, got, r.drops, r.full, r.answered, r.dumpDrops)
		rate = got
		okTrace = okTrace && r.drops == 0 && r.answered > 0 && r.full >= r.answered
		okDump = okDump && r.dumpDrops == 0
		if okTrace {
			best = rate
		}
		if okDump {
			bestDump = rate
		}
	}
	t.Logf("highest lossless rate: meshtrace %d req/s, tcpdump %d req/s (of the rates tried)", best, bestDump)
	fmt.Printf("highest lossless rate: meshtrace %d req/s, tcpdump %d req/s\n", best, bestDump)
}

type round struct {
	sent, answered, flows, full int
	drops, dumpDrops            uint64
}

func loadRound(t *testing.T, bin, name, client string, nss []string, rate int, d time.Duration) round {
	t.Helper()
	var r round
	// trace: until the timeout, no probe.
	tr := exec.Command(bin, "trace", "--mesh", name, "--port", "8080", "--count", "0", "--timeout", (d + 4*time.Second).String(), "-o", "json")
	var out strings.Builder
	tr.Stdout = &out
	if err := tr.Start(); err != nil {
		t.Fatal(err)
	}
	var dumps []*exec.Cmd
	var dumpErr []*strings.Builder
	for _, ns := range nss {
		c := exec.Command("tcpdump", "-i", "any", "-w", "/dev/null", "tcp port 8080 or tcp port 80 or udp port 4789")
		var e strings.Builder
		c.Stderr = &e
		if err := netnsx.Start(ns, c); err != nil {
			t.Fatal(err)
		}
		dumps, dumpErr = append(dumps, c), append(dumpErr, &e)
	}
	time.Sleep(2500 * time.Millisecond) // models read, sockets open
	r.sent, r.answered = load(client, "192.168.77.10:8080", rate, d)
	time.Sleep(500 * time.Millisecond)
	for _, c := range dumps {
		c.Process.Signal(syscall.SIGINT)
	}
	dropRE := regexp.MustCompile(`(\d+) packets dropped by kernel`)
	for i, c := range dumps {
		c.Wait()
		if m := dropRE.FindStringSubmatch(dumpErr[i].String()); m != nil {
			n, _ := strconv.ParseUint(m[1], 10, 64)
			r.dumpDrops += n
		}
	}
	tr.Wait()
	var res trace.Result
	if err := json.Unmarshal([]byte(out.String()), &res); err != nil {
		t.Fatalf("trace output: %v", err)
	}
	for _, p := range res.Points {
		r.drops += p.Drops
	}
	r.flows = len(res.Flows)
	for _, f := range res.Flows {
		if !f.Complete {
			continue
		}
		want := 9
		if f.Backend != nil && f.Backend.Node == "node1" {
			want = 13
		}
		ok := true
		for _, p := range f.Packets {
			ok = ok && p.Sightings >= want
		}
		if ok {
			r.full++
		}
	}
	return r
}

// load makes rate requests per second for d from the client netns, each
// a new TCP connection with an HTTP GET read to the end.
func load(netns, addr string, rate int, d time.Duration) (sent, answered int) {
	var s, a atomic.Int64
	workers := min(64, max(4, rate/20))
	every := time.Duration(float64(time.Second) * float64(workers) / float64(rate))
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(every)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				s.Add(1)
				var c net.Conn
				err := netnsx.Do(netns, func() error {
					var err error
					c, err = net.DialTimeout("tcp4", addr, time.Second)
					return err
				})
				if err != nil {
					continue
				}
				c.SetDeadline(time.Now().Add(2 * time.Second))
				fmt.Fprintf(c, "GET / HTTP/1.0\r\nHost: %s\r\n\r\n", addr)
				line, _ := bufio.NewReader(c).ReadString('\n')
				io.Copy(io.Discard, c)
				c.Close()
				if strings.HasPrefix(line, "HTTP/1.") {
					a.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return int(s.Load()), int(a.Load())
}

func sh(t *testing.T, bin string, args ...string) {
	t.Helper()
	if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil && args[1] != "down" {
		t.Fatalf("meshtrace %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func TestMain(m *testing.M) { testutil.Main(m) }

package nft

import (
	"bytes"
	"os"
	"os/exec"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/meshtrace/meshtrace/inspect/parse"
	"github.com/meshtrace/meshtrace/internal/netnsx"
)

// execSave is the baseline: what the exec reader does per namespace
// (iptables-save -c run inside it, parsed by inspect/parse).
func execSave(b testing.TB, path string) {
	out, err := netnsx.Output(path, exec.Command("iptables-save", "-c"))
	if err != nil {
		b.Fatalf("iptables-save in %s: %v", path, err)
	}
	if _, err := parse.IptablesSave(path, bytes.NewReader(out)); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkRead reads one Docker-shaped namespace with 15 rules; the
// ns/op of the iptables-save exec baseline, measured in the same run, and
// the ratio are reported as extra metrics.
func BenchmarkRead(b *testing.B) {
	_, path := setupNetns(b, "testdata/bench15.rules", nil)
	const baseRuns = 20
	start := time.Now()
	for i := 0; i < baseRuns; i++ {
		execSave(b, path)
	}
	base := float64(time.Since(start).Nanoseconds()) / baseRuns
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		fw, err := Read(path)
		if err != nil || fw.RuleCount() != 15 {
			b.Fatalf("Read: %v (%d rules)", err, fw.RuleCount())
		}
	}
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
	per := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(base, "exec-ns/op")
	b.ReportMetric(base/per, "x-faster")
}

// cpuTime is this process's user+system CPU time: on a shared machine it
// is steadier than wall time.
func cpuTime() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkExecSave is the baseline on its own.
func BenchmarkExecSave(b *testing.B) {
	_, path := setupNetns(b, "testdata/bench15.rules", nil)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		execSave(b, path)
	}
}

// BenchmarkRead200 times reading 200 Docker-shaped namespaces (15 rules
// each) with ReadAll, against the sequential exec loop an operator would
// write, in the same run. Setup (200 iptables-restore) takes a few
// seconds; run it with -bench Read200 -benchtime 3x.
func BenchmarkRead200(b *testing.B) {
	if os.Getenv("NFT_BENCH_NS") == "" && testing.Short() {
		b.Skip("short")
	}
	rules, err := os.ReadFile("testdata/bench15.rules")
	if err != nil {
		b.Fatal(err)
	}
	const n = 200
	paths := make([]string, n)
	for i := range paths {
		var name string
		name, paths[i] = newNetns(b)
		nsRun(b, name, string(rules), "iptables-restore")
	}
	start := time.Now()
	for _, p := range paths {
		execSave(b, p)
	}
	base := time.Since(start)
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		fws, errs := ReadAll(paths, 0)
		for j := range fws {
			if errs[j] != nil || fws[j].RuleCount() != 15 {
				b.Fatalf("%s: %v", paths[j], errs[j])
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
	per := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(float64(base.Nanoseconds()), "exec-loop-ns/op")
	b.ReportMetric(float64(base.Nanoseconds())/per, "x-faster")
}

// BenchmarkLegacyCheck is the cost of looking for legacy tables (entering
// the namespace), which Read pays only for namespaces without iptables-nft
// tables.
func BenchmarkLegacyCheck(b *testing.B) {
	_, path := newNetns(b)
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		if _, err := (kernel{}).legacyTables(path); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

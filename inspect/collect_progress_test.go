package inspect

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/internal/progress"
)

// TestCollectProgress: collect counts the namespaces it has done on its
// progress line, and clears it before it returns.
func TestCollectProgress(t *testing.T) {
	var term bytes.Buffer
	r := &fakeRunner{out: hostOutputs(t), installed: allTools}
	o := CollectOptions{HostNetns: selfNetns, NetnsDirs: []string{}, Runner: r, NoDocker: true, IPVS: fakeProbe{ok: true},
		Progress: progress.To(&term, "collect", 80)}
	if err := Collect(context.Background(), o, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if s := term.String(); !strings.Contains(s, "collect: 0/1\r") || !strings.Contains(s, "collect: 1/1 host\r") || !strings.HasSuffix(s, "\r\x1b[K") {
		t.Errorf("progress: %q", s)
	}
}

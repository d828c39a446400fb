package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

// Meshtrace builds the real meshtrace binary (static, CGO_ENABLED=0) once
// per test process and returns its path, for end-to-end tests that run it
// the way a user would. Packages that use it call Main from TestMain so the
// binary is removed when their tests end.
func Meshtrace(tb testing.TB) string {
	tb.Helper()
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "meshtrace-bin-"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "meshtrace")
		cmd := exec.Command("go", "build", "-o", binPath, "github.com/meshtrace/meshtrace/cmd/meshtrace")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build ./cmd/meshtrace: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		tb.Fatal(binErr)
	}
	return binPath
}

// Main runs a package's tests, then removes what Meshtrace built.
func Main(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

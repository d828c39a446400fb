package mesh

import (
	"errors"
	"fmt"
	"io"
	"os/exec"
	"syscall"

	"github.com/meshtrace/meshtrace/internal/netnsx"
)

// Exec runs argv inside a place of mesh name (see State.NetnsPath) with
// the given stdio and returns its exit code. A command that cannot start
// is an error; one that ran and failed is its exit code.
func Exec(runDir, name, target string, argv []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	if len(argv) == 0 {
		return 0, errors.New("mesh exec: no command (usage: mesh exec NODE -- CMD...)")
	}
	st, err := Load(runDir, name)
	if err != nil {
		return 0, err
	}
	path, err := st.NetnsPath(target)
	if err != nil {
		return 0, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	if err := netnsx.Start(path, cmd); err != nil {
		return 0, fmt.Errorf("mesh %s: exec %s in %s: %w", name, argv[0], target, err)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil // the shell's convention
		}
		return ee.ExitCode(), nil
	}
	if err != nil {
		return 0, fmt.Errorf("mesh %s: exec %s in %s: %w", name, argv[0], target, err)
	}
	return 0, nil
}

package mesh

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// agentTimeout bounds how long StartAgent waits for "ready".
const agentTimeout = 30 * time.Second

// StartAgent starts `BINARY mesh agent --name NAME --run-dir DIR
// --ready-fd 3` in a new session (it outlives `mesh up`), with its output in
// agent.log, and waits until it writes "ready" on the pipe given as fd 3.
// If it exits first, the error carries the end of its log.
func (s *linuxSystem) StartAgent(a AgentSpec) (int, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer r.Close()
	logPath := filepath.Join(a.Dir, agentLog)
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		w.Close()
		return 0, err
	}
	defer logf.Close()
	cmd := exec.Command(a.Binary, AgentArgs(a.Name, a.RunDir)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Dir = "/"
	err = cmd.Start()
	w.Close()
	if err != nil {
		return 0, fmt.Errorf("start %s: %w", a.Binary, err)
	}
	pid := cmd.Process.Pid
	// Recorded before waiting, so a `down` after this process dies still
	// finds the agent without scanning.
	if err := os.WriteFile(filepath.Join(a.Dir, agentPID), []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return 0, err
	}
	go cmd.Wait() // reap it if it dies while we live

	r.SetReadDeadline(time.Now().Add(agentTimeout))
	line, err := bufio.NewReader(r).ReadString('\n')
	if strings.TrimSpace(line) == "ready" {
		return pid, nil
	}
	tail := logTail(logPath, 5)
	if err == nil {
		err = fmt.Errorf("said %q", line)
	}
	return pid, fmt.Errorf("agent (pid %d) did not become ready: %w; %s: %s", pid, err, logPath, tail)
}

// AgentArgs are the agent's arguments after the binary; Remove recognises
// agents by them.
func AgentArgs(name, runDir string) []string {
	return []string{"mesh", "agent", "--name", name, "--run-dir", orDefault(runDir), "--ready-fd", "3"}
}

func logTail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// agentPIDs returns the live agents of mesh name under runDir: the pid
// file's, the state file's and any process whose command line says
// `mesh agent --name NAME` for this run directory. Each pid is checked
// against its command line, so a recycled pid is never killed.
func agentPIDs(dir, name string) []int {
	runDir := filepath.Dir(dir)
	cand := map[int]bool{}
	if b, err := os.ReadFile(filepath.Join(dir, agentPID)); err == nil {
		if p, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			cand[p] = true
		}
	}
	if st, err := Load(runDir, name); err == nil && st.AgentPID > 0 {
		cand[st.AgentPID] = true
	}
	if ents, err := os.ReadDir("/proc"); err == nil {
		for _, e := range ents {
			if p, err := strconv.Atoi(e.Name()); err == nil {
				cand[p] = true
			}
		}
	}
	var pids []int
	for p := range cand {
		if p != os.Getpid() && isAgent(p, name, runDir) {
			pids = append(pids, p)
		}
	}
	return pids
}

// isAgent reads /proc/PID/cmdline and says whether it is the agent of mesh
// name in runDir.
func isAgent(pid int, name, runDir string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(b) == 0 {
		return false
	}
	return matchAgentArgs(strings.Split(strings.TrimRight(string(b), "\x00"), "\x00"), name, runDir)
}

// matchAgentArgs says whether argv (binary first) runs `mesh agent` for
// mesh name in runDir.
func matchAgentArgs(argv []string, name, runDir string) bool {
	i := 1
	for ; i+1 < len(argv); i++ {
		if argv[i] == "mesh" && argv[i+1] == "agent" {
			break
		}
	}
	if i+1 >= len(argv) {
		return false
	}
	flags := map[string]string{"--run-dir": DefaultRunDir}
	args := argv[i+2:]
	for j := 0; j < len(args); j++ {
		k, v, ok := strings.Cut(args[j], "=")
		if !ok && j+1 < len(args) {
			v = args[j+1]
			j++
		}
		flags[k] = v
	}
	return flags["--name"] == name && filepath.Clean(flags["--run-dir"]) == filepath.Clean(runDir)
}

// killAndWait SIGKILLs pids and waits until each is gone (or a zombie,
// which holds no sockets and no namespace).
func killAndWait(pids []int, timeout time.Duration) error {
	for _, p := range pids {
		if err := syscall.Kill(p, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("kill agent %d: %w", p, err)
		}
	}
	deadline := time.Now().Add(timeout)
	for _, p := range pids {
		for alive(p) {
			if time.Now().After(deadline) {
				return fmt.Errorf("agent %d still alive %s after SIGKILL", p, timeout)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return nil
}

// closeInherited closes every descriptor above standard error that this
// process inherited, except keep. Go opens all of its own descriptors
// close-on-exec, so one without the flag came from the process that
// started us.
func closeInherited(keep ...int) error {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("list inherited descriptors: %w", err)
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= 2 || slices.Contains(keep, fd) {
			continue
		}
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil || flags&unix.FD_CLOEXEC != 0 {
			continue // gone (the directory's own) or ours
		}
		unix.Close(fd)
	}
	return nil
}

// agentRunning says whether pid is alive and the agent of mesh name in
// runDir.
func agentRunning(pid int, name, runDir string) bool {
	return pid > 0 && alive(pid) && isAgent(pid, name, runDir)
}

// alive says whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) S ...: the state follows the last ')'.
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || (b[i+2] != 'Z' && b[i+2] != 'X')
}

package inspect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/meshtrace/meshtrace/internal/kmod"
	"github.com/meshtrace/meshtrace/internal/progress"
	"github.com/meshtrace/meshtrace/internal/safefile"
)

// CollectOptions configure Collect.
type CollectOptions struct {
	// HostNetns is the namespace file that plays "host" ("" = HostPath()).
	HostNetns string
	// NetnsDirs are the directories of namespace files (nil =
	// DefaultNetnsDirs).
	NetnsDirs []string
	// NoDocker skips the Docker engine.
	NoDocker bool
	// Workers bounds how many namespaces are collected at once (0 = 4).
	Workers int

	// Runner runs the commands; nil = the real one (inside each
	// namespace through internal/netnsx).
	Runner CommandRunner
	// IPVS says whether the kernel has IPVS; nil = the real probe (the
	// module gate, then the generic netlink family "IPVS").
	IPVS IPVSProbe
	// Modules is the module gate: no command runs that would make the
	// kernel load a missing module (nil = kmod.Host(); kmod.Allow{} for
	// --allow-module-load). See available.
	Modules kmod.Gate
	// Docker reads the engine; nil = the local daemon when one answers.
	Docker DockerReader
	// Progress shows the namespaces done (nil: nothing shown; the
	// command gives progress.Stderr, which is nil off a terminal).
	Progress *progress.Line
}

// CommandRunner runs the collection commands.
type CommandRunner interface {
	// Run runs the command inside the namespace at netnsPath and returns
	// its standard output; a failure carries the standard error.
	Run(ctx context.Context, netnsPath, name string, args ...string) ([]byte, error)
	// LookPath reports an error when the command is not installed.
	LookPath(name string) error
}

// IPVSProbe tells whether the kernel has IPVS.
type IPVSProbe interface {
	// KernelIPVS reports whether it has, and when not, how that was
	// established.
	KernelIPVS() (ok bool, reason string)
}

// Collect writes this host's state (or that of the namespaces the options
// point at) as a bundle directory that Bundle(dir) reads back: for every
// namespace Discover finds, `ip -d addr`, `iptables-save -c`, `ip -4
// route`, `ip -4 neigh`, `bridge fdb`, `sysctl` of the knobs meshtrace
// reads, `ss -Htuln`, `conntrack -L` (unless sysctl said the namespace's
// table is empty, see noConntrack) and, when ipvsadm is installed and the
// kernel has IPVS, `ipvsadm-save -n`, `ipvsadm -L --timeout` and `ipvsadm
// -Ln --stats --exact`; the legacy backend's rules beside nf_tables ones
// (`iptables-legacy-save -c`, where it prints something), the xfrm SAs and
// policies (`ip -s xfrm state`, keys redacted, `ip -s xfrm policy`) and
// the counters (/proc/net/snmp, /proc/net/netstat,
// /proc/net/stat/nf_conntrack, `ip -s -s link`), each run inside the
// namespace; and the Docker engine's networks, containers and
// services when a daemon answers. What could not be collected (a command
// not installed, or failing in a namespace) has no file and a line in
// NOTES.txt saying why, so "not collected" never reads as "empty". It
// creates dir itself, or accepts an existing one only when it is empty and
// the caller's (see safefile.CreateDir); every directory it makes is 0700,
// every file 0600 and new, and nothing is written through a link. It
// changes nothing on the system: every command only lists.
func Collect(ctx context.Context, o CollectOptions, dir string) error {
	if o.Runner == nil {
		if err := needLinux(); err != nil { // the real commands, in the real namespaces
			return fmt.Errorf("collect: %w", err)
		}
	}
	out, err := safefile.CreateDir(dir)
	if err != nil {
		return fmt.Errorf("collect: %w", err)
	}
	defer out.Close()
	if err := out.Mkdir(BundleNetnsDir); err != nil {
		return fmt.Errorf("collect: %w", err)
	}
	dirs := o.NetnsDirs
	if dirs == nil {
		dirs = DefaultNetnsDirs
	}
	refs, err := Discover(o.HostNetns, dirs)
	if err != nil {
		return fmt.Errorf("collect: %w", err)
	}
	run := o.Runner
	if run == nil {
		run = execRunner{}
	}
	c := &collector{ctx: ctx, run: run, out: out}
	c.cmds = c.available(o)
	refs = c.uniqueNames(refs)

	workers := o.Workers
	if workers <= 0 {
		workers = 4
	}
	sem := make(chan struct{}, workers)
	var wg sync.WaitGroup
	errs := make([]error, len(refs))
	done := o.Progress.Counter(len(refs))
	for i, ref := range refs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = c.netns(ref)
			done.Done(ref.Name)
		}()
	}
	wg.Wait()
	o.Progress.Clear()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	// Commands killed by a cancelled context would read as "not
	// collected"; the bundle is incomplete, say so.
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("collect: %w", err)
	}
	folders := make([]string, len(refs))
	for i, ref := range refs {
		folders[i] = ref.Name
	}
	if err := writeNetnsList(out, folders); err != nil {
		return err
	}
	if !o.NoDocker {
		if err := c.docker(o.Docker); err != nil {
			return err
		}
	}
	return c.writeNotes()
}

type collector struct {
	ctx  context.Context
	run  CommandRunner
	out  *safefile.OutDir
	cmds []collectCmd

	mu    sync.Mutex
	notes []string
}

func (c *collector) note(format string, args ...any) {
	c.mu.Lock()
	c.notes = append(c.notes, fmt.Sprintf(format, args...))
	c.mu.Unlock()
}

// uniqueNames renames a namespace whose file name is already taken (the
// same name in two netns directories, or a netns file named "host") so its
// folder does not mix with the other's, and notes it.
func (c *collector) uniqueNames(refs []NetnsRef) []NetnsRef {
	taken := map[string]string{}
	out := make([]NetnsRef, len(refs))
	for i, ref := range refs {
		if prev, ok := taken[ref.Name]; ok {
			name := ref.Name
			for n := 2; taken[name] != ""; n++ {
				name = fmt.Sprintf("%s~%d", ref.Name, n)
			}
			c.note("netns %s (%s) collected as netns/%s: the name is taken by %s", ref.Name, ref.Path, name, prev)
			ref.Name = name
		}
		taken[ref.Name] = ref.Path
		out[i] = ref
	}
	return out
}

// netns collects one namespace. A command that fails is a note; only
// failing to write the bundle is an error.
func (c *collector) netns(ref NetnsRef) error {
	nsDir := path.Join(BundleNetnsDir, ref.Name)
	if err := c.out.Mkdir(nsDir); err != nil {
		return fmt.Errorf("collect: %w", err)
	}
	prev := map[string][]byte{} // what this namespace's commands printed, by file
	for _, cmd := range c.cmds {
		cmd, out, known := cmd.inNetns(prev)
		if !known && cmd.unsafe != nil {
			c.note("netns %s: %s not collected: %v", ref.Name, cmd.file, cmd.unsafe)
			continue
		}
		if !known {
			var err error
			if out, err = c.run.Run(c.ctx, ref.Path, cmd.name, cmd.args...); err != nil {
				c.note("netns %s: %s not collected: %s: %s", ref.Name, cmd.file, cmd, cmdError(err))
				continue
			}
		}
		if cmd.filter != nil {
			out = cmd.filter(out)
		}
		prev[cmd.file] = out
		if cmd.skipEmpty && len(bytes.TrimSpace(out)) == 0 {
			continue
		}
		if err := c.out.WriteFile(path.Join(nsDir, cmd.file), out); err != nil {
			return fmt.Errorf("collect: %w", err)
		}
	}
	return nil
}

// CommandError is a command that ran and failed, with its standard error.
type CommandError struct {
	Err    error
	Stderr []byte
}

func (e *CommandError) Error() string {
	msg := e.Err.Error()
	if s := strings.TrimSpace(string(e.Stderr)); s != "" {
		msg += ": " + s
	}
	return msg
}

func (e *CommandError) Unwrap() error { return e.Err }

// cmdError is a command's failure on one line.
func cmdError(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// docker writes docker/*.json from the engine, when one answers.
func (c *collector) docker(r DockerReader) error {
	d, notes := readDockerNoted(c.ctx, r)
	for _, n := range notes {
		c.note("%s", n)
	}
	if d == nil {
		return nil
	}
	return writeDocker(c.out, d)
}

// readDockerNoted reads the engine (r, or the local daemon when nil): nil
// and a note saying why when it could not, else what it read and the notes
// of what it could not (the services, on a worker) in NOTES.txt's words.
func readDockerNoted(ctx context.Context, r DockerReader) (*DockerData, []string) {
	var d *DockerData
	var err error
	if r != nil {
		d, err = ReadDocker(ctx, r)
	} else {
		d, err = ReadDockerLive(ctx)
	}
	if err != nil {
		return nil, []string{"docker/ not collected: " + strings.Join(strings.Fields(err.Error()), " ")}
	}
	if d == nil {
		return nil, []string{"docker/ not collected: no Docker daemon answered"}
	}
	var notes []string
	for _, n := range d.Notes {
		if strings.Contains(n, "services") {
			n = fmt.Sprintf("docker/%s not collected: %s", BundleServicesJSON, n)
		}
		notes = append(notes, n)
	}
	return d, notes
}

// writeDocker writes d as docker/*.json into out, the environment values
// redacted.
func writeDocker(out BundleSink, d *DockerData) error {
	redactEnv(d)
	if err := out.Mkdir(BundleDockerDir); err != nil {
		return fmt.Errorf("collect: %w", err)
	}
	files := []struct {
		name string
		v    any
		ok   bool
	}{
		{BundleNetworksJSON, d.Networks, true},
		{BundleContainerJSON, d.Containers, true},
		{BundleServicesJSON, d.Services, d.Services != nil},
	}
	for _, f := range files {
		if !f.ok {
			continue
		}
		b, err := json.MarshalIndent(f.v, "", "    ")
		if err != nil {
			return fmt.Errorf("collect: docker %s: %w", f.name, err)
		}
		if err := out.WriteFile(path.Join(BundleDockerDir, f.name), append(b, '\n')); err != nil {
			return fmt.Errorf("collect: %w", err)
		}
	}
	return nil
}

// redactEnv blanks the values of containers' environment variables (and
// of the service specs'): they often hold credentials, and meshtrace never
// reads them. The names stay.
func redactEnv(d *DockerData) {
	blank := func(env []string) {
		for i, kv := range env {
			if k, _, ok := strings.Cut(kv, "="); ok {
				env[i] = k + "=<redacted by meshtrace collect>"
			}
		}
	}
	for _, c := range d.Containers {
		if c.Config != nil {
			blank(c.Config.Env)
		}
	}
	for _, s := range d.Services {
		if cs := s.Spec.TaskTemplate.ContainerSpec; cs != nil {
			blank(cs.Env)
		}
	}
}

func (c *collector) writeNotes() error {
	if len(c.notes) == 0 {
		return nil
	}
	sort.Strings(c.notes)
	if err := c.out.WriteFile(BundleNotes, []byte(strings.Join(c.notes, "\n")+"\n")); err != nil {
		return fmt.Errorf("collect: %w", err)
	}
	return nil
}

package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/meshtrace/meshtrace/inspect"
	"github.com/meshtrace/meshtrace/internal/safefile"
	"github.com/meshtrace/meshtrace/swarm/collect"
)

// inProcess is collect's in-process mode: this node read by meshtrace's
// own readers (no ip, iptables-save, ipvsadm... needed: what runs in the
// FROM-scratch image), written to DIR, or on stdout as a tar stream
// (--stdout-tar) or as swarm collect's frame (--stdout-frame, what each
// task of the global job runs).
type inProcess struct {
	on, tar, frame bool
}

func (p *inProcess) add(c *cobra.Command) {
	f := c.Flags()
	f.BoolVar(&p.on, "in-process", false, "read with meshtrace's own readers (netlink, nf_tables, IPVS) instead of running ip/iptables-save/ipvsadm: needs no tools (the FROM-scratch image)")
	f.BoolVar(&p.tar, "stdout-tar", false, "with --in-process: write the bundle on stdout as a tar stream instead of DIR")
	f.BoolVar(&p.frame, "stdout-frame", false, "with --in-process: write the bundle on stdout framed for swarm collect (what its global job's tasks run)")
	_ = f.MarkHidden("stdout-frame")
}

// args checks the mode's arguments: a DIR unless on stdout.
func (p *inProcess) args(cmd *cobra.Command, args []string) error {
	if (p.tar || p.frame) && !p.on {
		return errors.New("--stdout-tar and --stdout-frame need --in-process")
	}
	if p.tar && p.frame {
		return errors.New("--stdout-tar and --stdout-frame exclude each other")
	}
	if p.tar || p.frame {
		return cobra.NoArgs(cmd, args)
	}
	return cobra.ExactArgs(1)(cmd, args)
}

// run collects in-process into DIR or stdout.
func (p *inProcess) run(cmd *cobra.Command, o inspect.Options, noDocker bool, args []string) error {
	ctx := cmd.Context()
	switch {
	case p.frame:
		node, id := os.Getenv(collect.EnvNode), os.Getenv(collect.EnvNodeID)
		if node == "" {
			node, _ = os.Hostname()
		}
		w := bufio.NewWriterSize(cmd.OutOrStdout(), 64<<10)
		e, err := collect.NewEncoder(w, collect.Header{Node: node, ID: id})
		if err != nil {
			return err
		}
		if err := inspect.CollectInProcess(ctx, o, nil, noDocker, e); err != nil {
			return err
		}
		if err := e.Close(); err != nil {
			return err
		}
		return w.Flush()
	case p.tar:
		w := bufio.NewWriterSize(cmd.OutOrStdout(), 64<<10)
		t := collect.NewTarSink(w)
		if err := inspect.CollectInProcess(ctx, o, nil, noDocker, t); err != nil {
			return err
		}
		if err := t.Close(); err != nil {
			return err
		}
		return w.Flush()
	}
	out, err := safefile.CreateDir(args[0])
	if err != nil {
		return fmt.Errorf("collect: %w", err)
	}
	defer out.Close()
	if err := inspect.CollectInProcess(ctx, o, nil, noDocker, out); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "bundle written to %s; read it with: meshtrace inspect --from %s\n", args[0], args[0])
	return nil
}

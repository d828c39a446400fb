package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/meshtrace/meshtrace/swarm"
	"github.com/meshtrace/meshtrace/swarm/collect"
)

// collectFlags are swarm collect's flags (also live swarm check's).
type collectFlags struct {
	image    string
	timeout  time.Duration
	maxBytes int64
}

func (f *collectFlags) add(c *cobra.Command, prefix string) {
	fs := c.Flags()
	fs.StringVar(&f.image, "image", "meshtrace:dev", prefix+"the meshtrace image the global job runs; it must be on every node (a registry, or docker load/import on each)")
	fs.DurationVar(&f.timeout, "timeout", 3*time.Minute, prefix+"how long the nodes have to answer; those that do not are named, the others still written")
	fs.Int64Var(&f.maxBytes, "max-bundle-bytes", collect.DefaultLimits.Bytes, prefix+"the most one node's bundle (its tar stream) may carry")
}

// run collects the swarm whose manager DOCKER_HOST (or the local socket)
// is into dir.
func (f *collectFlags) run(ctx context.Context, dir string, progress io.Writer) (*swarm.Manifest, error) {
	c, err := client.New(client.FromEnv)
	if err != nil {
		return nil, fmt.Errorf("swarm collect: docker client: %w", err)
	}
	defer c.Close()
	return collect.Run(ctx, c, collect.Options{
		Dir: dir, Image: f.image, Timeout: f.timeout, Progress: progress,
		Limits: collect.Limits{Bytes: f.maxBytes},
	})
}

func init() {
	var f collectFlags
	c := &cobra.Command{
		Use:   "collect DIR",
		Short: "on a manager: collect every node of the swarm as DIR/<node>/ through a global job",
		Long: `collect runs meshtrace on every node of the swarm as a Docker service in
mode global-job (API 1.41, Docker 20.10+): no ssh, nothing installed by hand.
Each task reads its own node in-process (meshtrace collect --in-process) and
hands the bundle back through the job's log; collect writes DIR/<node>/, one
bundle per node, and DIR/swarm.json, every node and why it was not collected.
The job runs the image --image on the host network with NET_ADMIN and
SYS_ADMIN, /var/run/docker/netns bind-mounted rslave and docker.sock
read-only: never privileged, no host PID namespace. It is removed at the end,
also on error or ^C. Progress, one line per node, goes to stderr.
Exit status: 0 when every node was collected, 4 when some were not (named),
1 when none was.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			man, err := f.run(cmd.Context(), args[0], cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			missing := 0
			for _, n := range man.Nodes {
				if !n.Collected {
					missing++
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d of %d nodes written to %s; compare them with: meshtrace swarm check --from %s\n",
				len(man.Nodes)-missing, len(man.Nodes), args[0], args[0])
			if missing > 0 {
				return &exitError{code: 4}
			}
			return nil
		},
	}
	f.add(c, "")
	swarmCmd.AddCommand(c)
}

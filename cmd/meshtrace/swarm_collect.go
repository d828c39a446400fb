package main

import (
	"context"
	"errors"
	"io"

	"github.com/spf13/cobra"

	"github.com/meshtrace/meshtrace/swarm"
)

// collectFlags are swarm collect's flags (also live swarm check's).
type collectFlags struct{}

func (f *collectFlags) add(c *cobra.Command, prefix string) {}

func (f *collectFlags) run(ctx context.Context, dir string, progress io.Writer) (*swarm.Manifest, error) {
	return nil, errors.New("a live swarm check needs swarm collect, which is not built yet: use --from DIR or --mesh NAME")
}

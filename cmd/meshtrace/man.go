package main

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/meshtrace/meshtrace/internal/safefile"
)

func init() {
	c := &cobra.Command{
		Use:   "man DIR",
		Short: "write a manual page per command (meshtrace.1, meshtrace-path.1, ...) into DIR, made from the commands' help",
		Long: `man writes the manual pages of meshtrace and every command into DIR, a new
directory or an empty one of yours (files mode 0600 in a 0700 directory, as every
file meshtrace writes: copy them to where man finds them):

  meshtrace man /tmp/mtman && install -m 0644 /tmp/mtman/*.1 /usr/local/share/man/man1/

Shell completion is ` + "`meshtrace completion bash|zsh|fish|powershell`" + `.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := safefile.CreateDir(args[0])
			if err != nil {
				return err
			}
			defer d.Close()
			n, err := writeManPages(root, d)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d manual pages in %s\n", n, d.Path())
			return nil
		},
	}
	root.AddCommand(c)
}

// writeManPages writes c's page and its commands' (cobra/doc's roff, one
// per command as GenManTree names them: meshtrace-mesh-up.1) into d, and
// says how many.
func writeManPages(c *cobra.Command, d *safefile.OutDir) (int, error) {
	n := 0
	for _, sub := range c.Commands() {
		if !sub.IsAvailableCommand() || sub.IsAdditionalHelpTopicCommand() {
			continue
		}
		k, err := writeManPages(sub, d)
		if err != nil {
			return n, err
		}
		n += k
	}
	var b bytes.Buffer
	// The date is SOURCE_DATE_EPOCH's when it is set (cobra/doc), else today.
	h := &doc.GenManHeader{Title: strings.ToUpper(strings.ReplaceAll(c.CommandPath(), " ", "-")), Section: "1",
		Source: "meshtrace", Manual: "meshtrace manual"}
	c.DisableAutoGenTag = true
	if err := doc.GenMan(c, h, &b); err != nil {
		return n, fmt.Errorf("manual page of %s: %w", c.CommandPath(), err)
	}
	name := strings.ReplaceAll(c.CommandPath(), " ", "-") + ".1"
	if err := d.WriteFile(name, b.Bytes()); err != nil {
		return n, err
	}
	return n + 1, nil
}

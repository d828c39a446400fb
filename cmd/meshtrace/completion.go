package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// completion replaces cobra's default completion command, which keeps the
// output it was created with (tests run the tree many times): the script
// goes to the command's output when it runs.
func init() {
	root.CompletionOptions.DisableDefaultCmd = true
	c := &cobra.Command{
		Use:   "completion bash|zsh|fish|powershell",
		Short: "print the shell completion script for bash, zsh, fish or powershell",
		Long: `completion prints a script that completes meshtrace's commands, flags and their
values in the shell named. Load it in this shell, or install it for every new one:

  source <(meshtrace completion bash)
  meshtrace completion bash >/etc/bash_completion.d/meshtrace
  meshtrace completion zsh >"${fpath[1]}/_meshtrace"      # with compinit enabled
  meshtrace completion fish >~/.config/fish/completions/meshtrace.fish`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"bash", "zsh", "fish", "powershell"},
		RunE: func(cmd *cobra.Command, args []string) error {
			w := cmd.OutOrStdout()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(w, true)
			case "zsh":
				return root.GenZshCompletion(w)
			case "fish":
				return root.GenFishCompletion(w, true)
			case "powershell":
				return root.GenPowerShellCompletionWithDesc(w)
			}
			return fmt.Errorf("completion %q: want bash, zsh, fish or powershell", args[0])
		},
	}
	root.AddCommand(c)
}

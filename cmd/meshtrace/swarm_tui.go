package main

import (
	"fmt"

	tea "charm.land/bubbletea/v2"
	"github.com/spf13/cobra"

	"github.com/meshtrace/meshtrace/internal/textsafe"
	"github.com/meshtrace/meshtrace/tui/swarmview"
	"github.com/meshtrace/meshtrace/tui/ui"
)

// swarmScreen owns the screen for the swarm view: q (or ctrl+c) quits,
// esc in the matrix too.
type swarmScreen struct{ v swarmview.Model }

func (s swarmScreen) Init() tea.Cmd { return nil }

func (s swarmScreen) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		s.v = s.v.SetSize(msg.Width, msg.Height)
		return s, nil
	case tea.KeyPressMsg:
		switch msg.String() {
		case "ctrl+c", "q":
			return s, tea.Quit
		case "esc":
			if !s.v.Open() {
				return s, tea.Quit
			}
		}
	}
	var cmd tea.Cmd
	s.v, cmd = s.v.Update(msg)
	return s, cmd
}

func (s swarmScreen) View() tea.View {
	v := tea.NewView(s.v.View())
	v.AltScreen = true
	return v
}

func init() {
	var src swarmSource
	c := &cobra.Command{
		Use:   "tui",
		Short: "the swarm on one screen: node x service, each cell the port's path from that node; enter opens it",
		Long: `tui draws every node of the swarm against every published service: a cell says
whether the port's path from that node reaches every task (as swarm path), with
swarm check's findings for the service on the node (!N). Enter opens the node's path
of the service (the path view: its boxes, rules and counters); esc comes back; q quits.
The nodes come from --from DIR, --mesh NAME, or live (a swarm collect first).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			nodes, err := src.nodes(cmd)
			if err != nil {
				return err
			}
			for _, n := range nodes {
				if n.Model != nil {
					textsafe.Escape(n.Model) // its strings reach the screen
				}
			}
			title := "swarm " + src.from
			if src.meshName != "" {
				title = "mesh " + src.meshName
			}
			v := swarmview.New(nodes, swarmview.WithTitle(title), swarmview.WithTheme(ui.New(colour())))
			if _, err := tea.NewProgram(swarmScreen{v}, tea.WithContext(cmd.Context())).Run(); err != nil && err != tea.ErrProgramKilled {
				return fmt.Errorf("swarm tui: %w", err)
			}
			return nil
		},
	}
	src.add(c)
	swarmCmd.AddCommand(c)
}

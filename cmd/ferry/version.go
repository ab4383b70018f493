package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/urfave/cli/v2"
)

// Set at build time by the Makefile:
// -ldflags "-X main.version=… -X main.commit=…".
var (
	version = "dev"
	commit  = ""
)

// buildCommit returns the commit set at build time, else the one the Go
// toolchain recorded, else "unknown".
func buildCommit() string {
	if commit != "" {
		return commit
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		rev, dirty := "", false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" && dirty {
			rev += "-dirty"
		}
		if rev != "" {
			return rev
		}
	}
	return "unknown"
}

func userAgent() string {
	return "ferry/" + version + " (+https://github.com/fedi-ferry/ferry)"
}

func newVersionCommand(g *globalOptions) *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print ferry's version, commit and Go version",
		Action: func(c *cli.Context) error {
			info := map[string]string{
				"version": version,
				"commit":  buildCommit(),
				"go":      runtime.Version(),
				"os_arch": runtime.GOOS + "/" + runtime.GOARCH,
			}
			if g.JSON {
				return printJSON(g.stdout, info)
			}
			_, err := fmt.Fprintf(g.stdout, "ferry %s (commit %s, %s, %s)\n", info["version"], info["commit"], info["go"], info["os_arch"])
			return err
		},
	}
}

func newCompletionCommand(g *globalOptions) *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script (bash, zsh or fish)",
		ArgsUsage: "bash|zsh|fish",
		Description: "Load completions for the current shell with, for example:\n" +
			"  source <(ferry completion bash)\n" +
			"  ferry completion fish > ~/.config/fish/completions/ferry.fish",
		Action: func(c *cli.Context) error {
			switch c.Args().First() {
			case "bash":
				_, err := fmt.Fprint(g.stdout, bashCompletion)
				return err
			case "zsh":
				_, err := fmt.Fprint(g.stdout, zshCompletion)
				return err
			case "fish":
				s, err := c.App.ToFishCompletion()
				if err != nil {
					return fmt.Errorf("generate fish completion: %w", err)
				}
				_, err = fmt.Fprint(g.stdout, s)
				return err
			}
			return usagef("completion: name a shell: bash, zsh or fish")
		},
	}
}

// The scripts ask ferry itself for candidates (urfave/cli's
// --generate-bash-completion), so they never go stale.
const bashCompletion = `# bash completion for ferry
_ferry_complete() {
  local cur="${COMP_WORDS[COMP_CWORD]}" opts
  if [[ "$cur" == -* ]]; then
    opts=$("${COMP_WORDS[@]:0:$COMP_CWORD}" "$cur" --generate-bash-completion 2>/dev/null)
  else
    opts=$("${COMP_WORDS[@]:0:$COMP_CWORD}" --generate-bash-completion 2>/dev/null)
  fi
  COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}
complete -o bashdefault -o default -F _ferry_complete ferry
`

const zshCompletion = `#compdef ferry
_ferry() {
  local -a opts
  local cur=${words[-1]}
  if [[ "$cur" == -* ]]; then
    opts=("${(@f)$(${words[@]:0:#words[@]-1} ${cur} --generate-bash-completion 2>/dev/null)}")
  else
    opts=("${(@f)$(${words[@]:0:#words[@]-1} --generate-bash-completion 2>/dev/null)}")
  fi
  if [[ "${opts[1]}" != "" ]]; then
    _describe 'values' opts
  else
    _files
  fi
}
compdef _ferry ferry
`

package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/datakit-gateway/datakit/gateway/config"
	"github.com/datakit-gateway/datakit/gateway/settings"
	"github.com/datakit-gateway/datakit/nodes"
)

// runConfig is `datakit config validate FILE` (gateway.md §5.6): plugins are
// compiled, no database is touched. import/export come with the datastores.
func runConfig(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "validate" {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	f, fs, err := parseServeFlags("config validate", args[1:], stderr)
	if err != nil || fs.NArg() != 1 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	data, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "datakit: %v\n", err)
		return exitUsage
	}
	st, err := settings.Load(settings.LoadOptions{ConfPath: f.conf, Env: os.Environ(), Overrides: f.overrides})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitInvalid
	}
	caches := nodes.NewCacheStores()
	defer caches.Close()
	plugins, err := buildPlugins(st, newLogger(st, io.Discard), caches)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitInvalid
	}
	_, err = config.LoadDeclarative(data, config.LoadOptions{Plugins: plugins})
	var de *config.DeclarativeError
	switch {
	case err == nil:
		fmt.Fprintln(stdout, "parse successful")
		return exitOK
	case errors.As(err, &de) && de.Parse == nil:
		for _, line := range de.Lines() {
			fmt.Fprintln(stderr, line)
		}
	default:
		fmt.Fprintln(stderr, err)
	}
	return exitInvalid
}

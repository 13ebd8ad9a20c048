package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/datakit-gateway/datakit/gateway/config"
	"github.com/datakit-gateway/datakit/gateway/settings"
	"github.com/datakit-gateway/datakit/nodes"
)

// runConfig is `datakit config validate|import|export` (gateway.md §5.6).
func runConfig(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "validate":
		return configValidate(args[1:], stdout, stderr)
	case "import":
		return configImport(args[1:], stdout, stderr)
	case "export":
		return configExport(args[1:], stdout, stderr)
	}
	fmt.Fprint(stderr, usage)
	return exitUsage
}

// configCommand is what the config subcommands share: their settings
// (-c/--set) and positional arguments.
type configCommand struct {
	st   *settings.Settings
	args []string
}

// parseConfigCommand parses -c/--set and FILE arguments (between minArgs
// and maxArgs of them) and loads the settings; a non-zero status means the
// command is over.
func parseConfigCommand(name string, args []string, minArgs, maxArgs int, stderr io.Writer) (*configCommand, int) {
	f, flags, err := parseServeFlags(name, args, stderr)
	// Flags may follow FILE too (`config import kong.yml -c datakit.conf`):
	// the flag package stops at the first argument, so parse on after it.
	var positional []string
	for err == nil && flags.NArg() > 0 {
		rest := flags.Args()
		positional = append(positional, rest[0])
		err = flags.Parse(rest[1:])
	}
	if err != nil || len(positional) < minArgs || len(positional) > maxArgs {
		fmt.Fprint(stderr, usage)
		return nil, exitUsage
	}
	st, err := settings.Load(settings.LoadOptions{ConfPath: f.conf, Env: os.Environ(), Overrides: f.overrides})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return nil, exitInvalid
	}
	return &configCommand{st: st, args: positional}, exitOK
}

// needsDatabase refuses database = off for import and export.
func (c *configCommand) needsDatabase(command string, stderr io.Writer) bool {
	if c.st.Database == "off" {
		fmt.Fprintf(stderr, "datakit: config %s needs a database; database = off keeps the configuration in a declarative file\n", command)
		return false
	}
	return true
}

// load reads and validates a declarative file with the enabled plugins
// compiled, printing its errors as validate does.
func (c *configCommand) load(file string, stderr io.Writer) (*config.Entities, int) {
	data, err := os.ReadFile(file) // #nosec G304 -- the file the operator named on the command line
	if err != nil {
		fmt.Fprintf(stderr, "datakit: %v\n", err)
		return nil, exitUsage
	}
	caches := nodes.NewCacheStores()
	defer caches.Close()
	plugins, err := buildPlugins(c.st, newLogger(c.st, io.Discard), caches)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return nil, exitInvalid
	}
	ents, err := config.LoadDeclarative(data, config.LoadOptions{Plugins: plugins})
	var de *config.DeclarativeError
	switch {
	case err == nil:
		return ents, exitOK
	case errors.As(err, &de) && de.Parse == nil:
		for _, line := range de.Lines() {
			fmt.Fprintln(stderr, line)
		}
	default:
		fmt.Fprintln(stderr, err)
	}
	return nil, exitInvalid
}

// configValidate is `datakit config validate FILE`: plugins are compiled,
// no database is touched.
func configValidate(args []string, stdout, stderr io.Writer) int {
	c, code := parseConfigCommand("config validate", args, 1, 1, stderr)
	if c == nil {
		return code
	}
	if _, code := c.load(c.args[0], stderr); code != exitOK {
		return code
	}
	fmt.Fprintln(stdout, "parse successful")
	return exitOK
}

// configImport is `datakit config import FILE`: validate, then upsert
// every entity in one transaction (one revision), deleting nothing.
func configImport(args []string, stdout, stderr io.Writer) int {
	c, code := parseConfigCommand("config import", args, 1, 1, stderr)
	if c == nil {
		return code
	}
	if !c.needsDatabase("import", stderr) {
		return exitInvalid
	}
	ents, code := c.load(c.args[0], stderr)
	if code != exitOK {
		return code
	}
	ctx := context.Background()
	s, err := openStore(ctx, c.st, newLogger(c.st, stderr))
	if err != nil {
		fmt.Fprintf(stderr, "datakit: %v\n", err)
		return exitInvalid
	}
	defer s.Close() //nolint:errcheck // the import's result is what matters
	if _, err := s.Import(ctx, ents); err != nil {
		fmt.Fprintf(stderr, "datakit: import failed: %v\n", err)
		return exitInvalid
	}
	fmt.Fprintf(stdout, "import successful: %d entities\n", ents.Count())
	return exitOK
}

// configExport is `datakit config export [FILE]`: the database as a "3.0"
// document to FILE, which must not exist yet, or to stdout.
func configExport(args []string, stdout, stderr io.Writer) int {
	c, code := parseConfigCommand("config export", args, 0, 1, stderr)
	if c == nil {
		return code
	}
	if !c.needsDatabase("export", stderr) {
		return exitInvalid
	}
	var file string
	if len(c.args) == 1 {
		file = c.args[0]
		// Checked before the database is opened; O_EXCL below closes the race.
		if _, err := os.Lstat(file); err == nil {
			fmt.Fprintf(stderr, "datakit: %s already exists; export never overwrites a file\n", file)
			return exitInvalid
		}
	}
	ctx := context.Background()
	s, err := openStore(ctx, c.st, newLogger(c.st, stderr))
	if err != nil {
		fmt.Fprintf(stderr, "datakit: %v\n", err)
		return exitInvalid
	}
	ents, _, err := s.ReadAll(ctx)
	_ = s.Close() // read-only use; the read's error is the one to report
	if err != nil {
		fmt.Fprintf(stderr, "datakit: export failed: %v\n", err)
		return exitInvalid
	}
	doc, err := config.Export(ents)
	if err != nil {
		fmt.Fprintf(stderr, "datakit: %v\n", err)
		return exitInvalid
	}
	if file == "" {
		if _, err := stdout.Write(doc); err != nil {
			fmt.Fprintf(stderr, "datakit: %v\n", err)
			return exitInvalid
		}
		return exitOK
	}
	if err := writeNewFile(file, doc); err != nil {
		fmt.Fprintf(stderr, "datakit: %v\n", err)
		return exitInvalid
	}
	return exitOK
}

// writeNewFile creates file with data; an existing file is an error and is
// left alone, and a failed or killed write never leaves a partial file at
// the target (hardening §2.10): the data goes to a temporary file in the
// same directory, is synced, then linked to the target — link(2) never
// replaces an existing file — and the directory is synced. The mode is
// 0600: an export holds credentials and private keys.
func writeNewFile(file string, data []byte) (err error) {
	dir := filepath.Dir(file)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(file)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(tmp.Name()) }() // gone once linked; on failure, best effort
	if _, err = tmp.Write(data); err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Link(tmp.Name(), file); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s already exists; export never overwrites a file", file)
		}
		return err
	}
	d, err := os.Open(dir) // #nosec G304 -- the directory of the export file the operator named
	if err != nil {
		return err
	}
	defer func() { _ = d.Close() }()
	return d.Sync()
}

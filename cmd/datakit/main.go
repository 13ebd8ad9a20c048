// Command datakit is the datakit gateway's command line: graph tooling
// (validate, dot, run) and version. It only parses arguments and wires
// packages together.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/datakit-gateway/datakit/engine"
	"github.com/datakit-gateway/datakit/graphrun"
	"github.com/datakit-gateway/datakit/nodes"
)

// version is set at build time (-ldflags "-X main.version=…").
var version = "0.1.0-dev"

// Exit statuses (spec §12).
const (
	exitOK      = 0
	exitInvalid = 1
	exitUsage   = 2
)

const usage = `usage:
  datakit serve [-c FILE] [--set NAME=VALUE]... [--database off] [--declarative-config FILE] [--check]
  datakit demo
  datakit config validate FILE
  datakit config import FILE [-c FILE] [--set NAME=VALUE]...
  datakit config export [FILE] [-c FILE] [--set NAME=VALUE]...
  datakit graph validate FILE...
  datakit graph dot FILE
  datakit graph run FILE --request REQ.json [--mock NODE=RESP.json]... [--upstream RESP.json] [--no-timing]
  datakit version
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "version":
		fmt.Fprintf(stdout, "datakit %s (Kong Admin API 3.11.0)\n", version)
		return exitOK
	case "serve":
		return runServe(args[1:], stdout, stderr)
	case "demo":
		return runDemo(args[1:], stdout, stderr)
	case "config":
		return runConfig(args[1:], stdout, stderr)
	case "graph":
		if len(args) < 2 {
			break
		}
		cli := &graphCLI{stdin: stdin, stdout: stdout, stderr: stderr}
		switch args[1] {
		case "validate":
			return cli.validate(args[2:])
		case "dot":
			return cli.dot(args[2:])
		case "run":
			return cli.run(args[2:])
		}
	}
	fmt.Fprint(stderr, usage)
	return exitUsage
}

type graphCLI struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

// read loads a YAML or JSON file (`-` is stdin) and returns the plugin
// configuration it holds.
func (c *graphCLI) read(file string) (any, error) {
	var data []byte
	var err error
	if file == "-" {
		data, err = io.ReadAll(c.stdin)
	} else {
		data, err = os.ReadFile(file) // #nosec G304 G703 -- the file the operator named on the command line
	}
	if err != nil {
		return nil, err
	}
	doc, err := engine.ParseDocument(data)
	if err != nil {
		return nil, &engine.ConfigError{Messages: []string{err.Error()}}
	}
	return graphrun.ConfigFromDocument(doc), nil
}

func registry() *engine.Registry {
	reg := engine.NewRegistry()
	nodes.Register(reg, nodes.Deps{Version: version})
	return reg
}

// compile reads and compiles FILE, printing errors; it returns the plan or
// the exit status.
func (c *graphCLI) compile(file string) (*engine.Plan, int) {
	cfg, err := c.read(file)
	if err == nil {
		var plan *engine.Plan
		if plan, err = engine.Compile(cfg, registry(), engine.Options{}); err == nil {
			return plan, exitOK
		}
	}
	return nil, c.report(file, err)
}

func (c *graphCLI) report(file string, err error) int {
	var ce *engine.ConfigError
	if errors.As(err, &ce) {
		for _, m := range ce.Messages {
			fmt.Fprintf(c.stdout, "%s: %s\n", file, m)
		}
		return exitInvalid
	}
	fmt.Fprintf(c.stderr, "datakit: %v\n", err)
	return exitUsage
}

func (c *graphCLI) validate(files []string) int {
	if len(files) == 0 {
		fmt.Fprint(c.stderr, usage)
		return exitUsage
	}
	status := exitOK
	for _, f := range files {
		if _, st := c.compile(f); st != exitOK {
			status = max(status, st)
			continue
		}
		fmt.Fprintf(c.stdout, "%s: ok\n", f)
	}
	return status
}

func (c *graphCLI) dot(args []string) int {
	if len(args) != 1 {
		fmt.Fprint(c.stderr, usage)
		return exitUsage
	}
	plan, st := c.compile(args[0])
	if st != exitOK {
		return st
	}
	_, _ = c.stdout.Write(plan.DOT())
	return exitOK
}

// mockFlags collects repeated --mock NODE=RESP.json flags.
type mockFlags map[string]string

func (m mockFlags) String() string { return "" }
func (m mockFlags) Set(v string) error {
	node, file, ok := strings.Cut(v, "=")
	if !ok || node == "" || file == "" {
		return fmt.Errorf("expected NODE=RESP.json, got %q", v)
	}
	m[node] = file
	return nil
}

func (c *graphCLI) run(args []string) int {
	fs := flag.NewFlagSet("graph run", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	reqFile := fs.String("request", "", "the client request (REQ.json)")
	upstream := fs.String("upstream", "", "the upstream response (RESP.json)")
	noTiming := fs.Bool("no-timing", false, "print trace times as 0")
	mocks := mockFlags{}
	fs.Var(mocks, "mock", "answer call node NODE with RESP.json (repeatable)")
	// The file may come before or after the flags.
	var file string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") || len(args) > 0 && args[0] == "-" {
		file, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if file == "" && fs.NArg() == 1 {
		file = fs.Arg(0)
	} else if fs.NArg() != 0 || file == "" || *reqFile == "" {
		fmt.Fprint(c.stderr, usage)
		return exitUsage
	}
	opts := graphrun.Options{Mocks: map[string]graphrun.Response{}, NoTiming: *noTiming, Version: version}
	var req graphrun.Request
	if err := readJSON(*reqFile, &req); err != nil {
		fmt.Fprintf(c.stderr, "datakit: %v\n", err)
		return exitUsage
	}
	for node, f := range mocks {
		var resp graphrun.Response
		if err := readJSON(f, &resp); err != nil {
			fmt.Fprintf(c.stderr, "datakit: %v\n", err)
			return exitUsage
		}
		opts.Mocks[node] = resp
	}
	if *upstream != "" {
		opts.Upstream = &graphrun.Response{}
		if err := readJSON(*upstream, opts.Upstream); err != nil {
			fmt.Fprintf(c.stderr, "datakit: %v\n", err)
			return exitUsage
		}
	}
	cfg, err := c.read(file)
	if err != nil {
		return c.report(file, err)
	}
	res, err := graphrun.Run(context.Background(), cfg, req, opts)
	if err != nil {
		return c.report(file, err)
	}
	out, err := graphrun.Encode(res)
	if err != nil {
		fmt.Fprintf(c.stderr, "datakit: %v\n", err)
		return exitUsage
	}
	_, _ = c.stdout.Write(append(out, '\n'))
	if res.Outcome == "error" {
		return exitInvalid
	}
	return exitOK
}

func readJSON(file string, v any) error {
	data, err := os.ReadFile(file) // #nosec G304 -- a file named on the command line
	if err != nil {
		return err
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: %v", file, err)
	}
	return nil
}

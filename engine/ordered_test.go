package engine

import (
	"context"
	"testing"
)

// TestOrderedArrivals: with RunOptions.Ordered, async results are handled in
// dispatch order even when a later call answers first.
func TestOrderedArrivals(t *testing.T) {
	release := make(chan struct{})
	h := &fakeHooks{call: func(ctx context.Context, name string, in []any) ([]any, error) {
		if name == "FIRST" {
			<-release // answers only after SECOND has answered
		} else {
			defer close(release)
		}
		return []any{nil, nil, 200, ""}, nil
	}}
	plan := mustCompile(t, h, `
nodes:
  - {name: FIRST, type: call, url: "http://a.test/"}
  - {name: SECOND, type: call, url: "http://b.test/"}
`, Options{})
	run := plan.NewRun(newFakeEx(), RunOptions{Trace: true, Ordered: true})
	if out := run.Access(context.Background()); out.Err != nil || out.Abort != nil {
		t.Fatalf("Access = %+v", out)
	}
	var resumed []string
	for _, ev := range run.Trace().Events {
		if ev.Action == "resume" {
			resumed = append(resumed, ev.Name)
		}
	}
	if len(resumed) != 2 || resumed[0] != "FIRST" || resumed[1] != "SECOND" {
		t.Errorf("resume order = %v, want [FIRST SECOND]", resumed)
	}
}

package nodes

import "github.com/datakit-gateway/datakit/engine"

// branchMaxNames bounds each of a branch's lists (spec §2.4, §5.5); a listed
// name is at most as long as a node name.
const (
	branchMaxNames   = 64
	branchMaxNameLen = 255
)

// branchKind returns the branch node type (spec §7.6): its boolean input
// selects the `then` or the `else` nodes. It has no Build: the engine checks
// the listed names, runs the branch itself (the input must be a boolean) and
// propagates skips (spec §5.2).
func branchKind() engine.Kind {
	return engine.KindFunc(func(a *engine.Attrs) *engine.Decl {
		return &engine.Decl{
			IO:    engine.KeyInput,
			Input: engine.TypeBoolean,
			Then:  branchList(a, "then"),
			Else:  branchList(a, "else"),
		}
	})
}

// branchList reads one list. A list with an invalid entry is dropped whole
// (its errors are recorded), so that the engine's checks of the names never
// report an entry at a shifted position.
func branchList(a *engine.Attrs, name string) []string {
	raw, ok := a.Raw(name)
	if !ok {
		return nil
	}
	list := a.StringList(name, 1, branchMaxNames, branchMaxNameLen)
	if arr, isArr := raw.([]any); !isArr || len(list) != len(arr) {
		return nil
	}
	return list
}

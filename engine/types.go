package engine

// Type is the declared type of a node field, used to check connections at load
// time (spec §1.3).
type Type uint8

// The connection types. TypeNone marks the absence of a field.
const (
	TypeNone Type = iota
	TypeAny
	TypeString
	TypeNumber
	TypeBoolean
	TypeArray
	TypeMap
	TypeObject
)

var typeNames = [...]string{"none", "any", "string", "number", "boolean", "array", "map", "object"}

func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "invalid"
}

// Field is a named, typed input or output of a node.
type Field struct {
	Name string
	Type Type
}

// SelfField is the name under which node-wise connections appear in traces and
// DOT labels.
const SelfField = "$self"

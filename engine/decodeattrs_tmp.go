package engine

// temporary: replaced by the engine's own DecodeAttrs at merge

// DecodeAttrs decodes one node's attributes with k, reporting unread keys as
// unknown fields; errors are located at loc.
func DecodeAttrs(loc string, values map[string]any, k Kind) (*Decl, []error) {
	var errs []error
	a := newAttrs(loc, "", values, &errs, nil)
	d := k.Decode(a)
	a.unknown(nil)
	return d, errs
}

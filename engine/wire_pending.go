package engine

// HeaderLines is provided by wire.go (pending merge).
func HeaderLines(m any) ([]HeaderLine, error) { return nil, nil }

func EncodeQuery(m map[string]any) string { return "" }

func EncodeBody(v any) ([]byte, bool, error) { return nil, false, nil }

package gateway

import (
	"context"

	"github.com/datakit-gateway/datakit/gateway/config"
)

// LoadDeclarative is the DB-less configuration path (gateway.md §5.6): decode
// the document, validate, compile a snapshot and swap it in. A document that
// fails any step leaves the running snapshot in place; the error is a
// *config.DeclarativeError for document problems.
func (g *Gateway) LoadDeclarative(ctx context.Context, data []byte, opts BuildOptions) error {
	ents, err := config.LoadDeclarative(data, config.LoadOptions{Plugins: opts.Plugins})
	if err != nil {
		return err
	}
	opts.Hash = config.Hash(data)
	if len(data) == 0 || ents.Count() == 0 {
		opts.Hash = config.EmptyHash
	}
	opts.Previous = g.Snapshot()
	snap, err := Build(ctx, ents, opts)
	if err != nil {
		return err
	}
	g.Swap(snap)
	return nil
}

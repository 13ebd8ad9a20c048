package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/datakit-gateway/datakit/gateway/settings"
	"github.com/datakit-gateway/datakit/gateway/store"
)

// openStore opens the configured database, retrying an unreachable
// PostgreSQL for db_startup_timeout; migrations run on open.
func openStore(ctx context.Context, st *settings.Settings, logger *slog.Logger) (store.Store, error) {
	switch st.Database {
	case "sqlite":
		return store.OpenSQLite(ctx, store.SQLiteOptions{Path: st.SQLitePath, PollInterval: st.DBUpdateFrequency, Logger: logger})
	case "postgres":
		deadline := time.Now().Add(st.DBStartupTimeout)
		for {
			s, err := store.OpenPostgres(ctx, store.PostgresOptions{Host: st.PGHost, Port: st.PGPort, User: st.PGUser,
				Password: st.PGPassword.Reveal(), Database: st.PGDatabase, Schema: st.PGSchema, SSL: st.PGSSL,
				SSLVerify: st.PGSSLVerify, Timeout: st.PGTimeout, MaxConnections: st.PGMaxConnections,
				PollInterval: st.DBUpdateFrequency, Logger: logger})
			if err == nil || !errors.Is(err, store.ErrUnavailable) || time.Now().After(deadline) {
				return s, err
			}
			logger.Warn("database unreachable; retrying", "error", err)
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	return nil, fmt.Errorf("database = %s has no store", st.Database)
}

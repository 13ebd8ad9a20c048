// Package settings holds the gateway's process settings (spec gateway.md §2):
// every name of the §2.2 table with its default, type and validation, loaded
// from datakit.conf, DATAKIT_* environment variables and command-line
// overrides, in that order of increasing precedence.
//
// Load returns a typed, validated *Settings or every problem found, one line
// each, naming the setting and where its value came from. Settings that are
// secret (admin_token, pg_password) are held as Secret values, which print as
// "******" through fmt, slog and JSON; Public and Lookup give the effective
// settings as plain values with the secrets masked.
//
// The package reads files only in Load and keeps no package state: the
// settings table is built per call, and a *Settings is an ordinary value that
// is safe for concurrent reads once loaded.
package settings

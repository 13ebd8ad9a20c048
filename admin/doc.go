// Package admin serves the Kong-compatible Admin API (gateway.md §4): it
// translates HTTP requests into calls on package config (decoding,
// validation, declarative documents), on a datastore (DB modes) and on the
// running gateway (DB-less loads, status), and renders Kong's response and
// error shapes. HTTP status mapping lives in errors.go only.
package admin

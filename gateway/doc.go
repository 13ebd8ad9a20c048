// Package gateway is the data plane: it accepts proxy requests, routes them
// with the active Snapshot, runs the plugin pipeline in phases, proxies to
// the upstream and answers errors as Kong does. Plugins implement the
// contract in plugin.go; the gateway never imports a plugin — cmd/datakit
// registers them.
package gateway

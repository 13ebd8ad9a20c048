// Package config defines the gateway's entities (services, routes, consumers,
// plugins, upstreams, targets, certificates, SNIs, key-auth credentials), their
// defaults and validation, and the declarative file format that carries a whole
// set of them.
//
// Every input path (the declarative file, an Admin API body, a stored row)
// decodes strictly into the same entity structs through the same Decode
// functions, so a violation reads the same wherever it is found. Errors are
// collected, never returned at the first one, into a FieldErrors tree shaped
// like the input; the Admin API renders that tree as Kong's
// {code,name,message,fields} bodies.
//
// Plugin configurations are validated through the PluginSchemas interface that
// callers hand in: this package never imports a plugin or the gateway.
package config

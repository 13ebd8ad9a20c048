package config

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
)

// Consumer is a client identity (§3.4).
type Consumer struct {
	CreatedAt int64    `json:"created_at"`
	CustomID  *string  `json:"custom_id"`
	ID        string   `json:"id"`
	Tags      []string `json:"tags"`
	UpdatedAt int64    `json:"updated_at"`
	Username  *string  `json:"username"`
}

// DecodeConsumer decodes and validates a Consumer from plain values.
func DecodeConsumer(in map[string]any) (Consumer, *FieldErrors) {
	var c Consumer
	errs := &FieldErrors{}
	r := newReader(in, errs)
	r.common(&c.ID, &c.CreatedAt, &c.Tags)
	r.timestamp("updated_at", &c.UpdatedAt)
	r.strPtr("username", &c.Username)
	r.strPtr("custom_id", &c.CustomID)
	r.done()
	if c.Username == nil && c.CustomID == nil && !errs.anyField("username", "custom_id") {
		errs.AddEntity("at least one of these fields must be non-empty: 'custom_id', 'username'")
	}
	return c, errs
}

// KeyauthCredential is a key-auth API key of a Consumer (§3.10); like Kong
// it has no updated_at.
type KeyauthCredential struct {
	Consumer  *ForeignKey `json:"consumer"`
	CreatedAt int64       `json:"created_at"`
	ID        string      `json:"id"`
	// Key is stored in plain text, as Kong OSS does; empty until generated.
	Key  string   `json:"key"`
	Tags []string `json:"tags"`
}

// DecodeKeyauthCredential decodes and validates a credential from plain
// values. An absent key stays empty: the caller generates one with
// GenerateKey, keeping decoding free of randomness.
func DecodeKeyauthCredential(in map[string]any) (KeyauthCredential, *FieldErrors) {
	var k KeyauthCredential
	errs := &FieldErrors{}
	r := newReader(in, errs)
	r.common(&k.ID, &k.CreatedAt, &k.Tags)
	r.str("key", &k.Key)
	r.foreign("consumer", "username", &k.Consumer)
	r.done()
	if k.Consumer == nil && errs.children["consumer"].Empty() {
		errs.Field("consumer").Add("required field missing")
	}
	return k, errs
}

// GenerateKey returns 32 random characters of [A-Za-z0-9] read from src
// (crypto/rand.Reader when nil).
func GenerateKey(src io.Reader) (string, error) {
	if src == nil {
		src = rand.Reader
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	out := make([]byte, 0, 32)
	var b [64]byte
	for len(out) < 32 {
		if _, err := io.ReadFull(src, b[:]); err != nil {
			return "", fmt.Errorf("generate key: %w", err)
		}
		for _, c := range b {
			// 248 = 4×62: rejecting the rest keeps the choice uniform.
			if c < 248 && len(out) < 32 {
				out = append(out, alphabet[c%62])
			}
		}
	}
	return string(out), nil
}

// Plugin is a configured plugin instance (§3.5). Its scope is the set of
// foreign keys; precedence between scopes is the pipeline's (§9.3).
type Plugin struct {
	// Config is the plugin's configuration with its defaults filled in, as
	// PluginSchemas.ValidatePluginConfig returned it.
	Config    map[string]any `json:"config"`
	Consumer  *ForeignKey    `json:"consumer"`
	CreatedAt int64          `json:"created_at"`
	// Enabled false keeps the plugin out of the snapshot.
	Enabled      bool        `json:"enabled"`
	ID           string      `json:"id"`
	InstanceName *string     `json:"instance_name"`
	Name         string      `json:"name"`
	Protocols    []string    `json:"protocols"`
	Route        *ForeignKey `json:"route"`
	Service      *ForeignKey `json:"service"`
	Tags         []string    `json:"tags"`
	UpdatedAt    int64       `json:"updated_at"`
}

// PluginSchemas is how this package reaches the plugins loaded on a node.
// cmd/datakit builds it from the plugin registry; this package never imports
// a plugin.
type PluginSchemas interface {
	// PluginSchema returns a loaded plugin's schema; false when the plugin
	// is not loaded on this node.
	PluginSchema(name string) (PluginSchema, bool)
	// ValidatePluginConfig fills in p.Config's defaults and validates it
	// (the datakit plugin compiles it). The error is a violation under
	// "config": a *FieldErrors is placed as is ("config.key_names.1"), an
	// error with Unwrap() []error (errors.Join of the engine's messages)
	// becomes an array of its messages, any other error one message.
	ValidatePluginConfig(p Plugin) (map[string]any, error)
}

// PluginSchema is what validation knows of one plugin beyond its config:
// the scope foreign keys it forbids (key-auth forbids consumer).
type PluginSchema struct {
	NoRoute, NoService, NoConsumer bool
}

// DecodePlugin decodes, defaults and validates a Plugin, its config through
// schemas. References stay unresolved.
func DecodePlugin(in map[string]any, schemas PluginSchemas) (Plugin, *FieldErrors) {
	p := Plugin{Enabled: true, Protocols: []string{"grpc", "grpcs", "http", "https"}}
	errs := &FieldErrors{}
	r := newReader(in, errs)
	r.common(&p.ID, &p.CreatedAt, &p.Tags)
	r.timestamp("updated_at", &p.UpdatedAt)
	r.required("name", &p.Name)
	r.name("instance_name", &p.InstanceName)
	r.foreign("route", "name", &p.Route)
	r.foreign("service", "name", &p.Service)
	r.foreign("consumer", "username", &p.Consumer)
	cfg, _ := r.record("config")
	r.strings("protocols", &p.Protocols, true, oneOf("grpc", "grpcs", "http", "https"))
	r.boolean("enabled", &p.Enabled)
	r.done()

	if p.Name == "" {
		return p, errs
	}
	var schema PluginSchema
	ok := false
	if schemas != nil {
		schema, ok = schemas.PluginSchema(p.Name)
	}
	if !ok {
		errs.Field("name").Addf("plugin '%s' not enabled; add it to the 'plugins' configuration property", p.Name)
		return p, errs
	}
	for _, f := range []struct {
		forbidden bool
		name      string
		set       bool
	}{
		{schema.NoRoute, "route", p.Route != nil},
		{schema.NoService, "service", p.Service != nil},
		{schema.NoConsumer, "consumer", p.Consumer != nil},
	} {
		if f.forbidden && f.set {
			errs.Field(f.name).Add("value must be null")
		}
	}
	if !errs.children["config"].Empty() {
		return p, errs // not a record
	}
	if cfg == nil {
		cfg = map[string]any{}
	}
	p.Config = cfg
	normalized, err := schemas.ValidatePluginConfig(p)
	if err != nil {
		addConfigError(errs.Field("config"), err)
		return p, errs
	}
	p.Config = normalized
	return p, errs
}

// addConfigError places a plugin's config error as PluginSchemas documents.
func addConfigError(errs *FieldErrors, err error) {
	var fe *FieldErrors
	if errors.As(err, &fe) {
		errs.Merge(fe)
		return
	}
	list := joinedErrors(err)
	if len(list) == 1 && list[0] == err {
		errs.Add(err.Error())
		return
	}
	msgs := make([]string, len(list))
	for i, e := range list {
		msgs[i] = e.Error()
	}
	errs.AddList(msgs...)
}

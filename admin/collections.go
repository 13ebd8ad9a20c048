package admin

import (
	"slices"
	"strings"

	"github.com/datakit-gateway/datakit/gateway/config"
)

// collection is an entity collection as the Admin API exposes it (§4.3).
type collection struct {
	// path is the collection's path segment ("services", "key-auths").
	path string
	// entity is its schema name, used in messages and declarative
	// documents ("services", "keyauth_credentials").
	entity string
	// key is the endpoint key field usable instead of the id; "" when
	// there is none (certificates).
	key string
	// nestedOnly collections have no top-level path (targets).
	nestedOnly bool
	// links are the foreign keys with an `/es/{e}/{field}` path.
	links []string
	// items lists the collection's entities of a snapshot, by id.
	items func(e *config.Entities) []item
}

// nesting is a child collection under a parent (`/services/{s}/routes`).
type nesting struct {
	parent, child *collection
	// path is the child's segment under the parent ("routes", "key-auth").
	path string
	// field is the child's foreign key to the parent.
	field string
}

// item is one entity of a snapshot with what lists filter on.
type item struct {
	id, key  string
	tags     []string
	refs     map[string]string // foreign key field → parent id
	customID *string
	value    any
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func fk(refs map[string]string, field string, k *config.ForeignKey) {
	if k != nil {
		refs[field] = k.ID
	}
}

var (
	services = &collection{path: "services", entity: "services", key: "name",
		items: func(e *config.Entities) []item {
			out := make([]item, len(e.Services))
			for i := range e.Services {
				s := &e.Services[i]
				out[i] = item{id: s.ID, key: str(s.Name), tags: s.Tags, value: s}
			}
			return out
		}}
	routes = &collection{path: "routes", entity: "routes", key: "name", links: []string{"service"},
		items: func(e *config.Entities) []item {
			out := make([]item, len(e.Routes))
			for i := range e.Routes {
				r := &e.Routes[i]
				refs := map[string]string{}
				fk(refs, "service", r.Service)
				out[i] = item{id: r.ID, key: str(r.Name), tags: r.Tags, refs: refs, value: r}
			}
			return out
		}}
	consumers = &collection{path: "consumers", entity: "consumers", key: "username",
		items: func(e *config.Entities) []item {
			out := make([]item, len(e.Consumers))
			for i := range e.Consumers {
				c := &e.Consumers[i]
				out[i] = item{id: c.ID, key: str(c.Username), tags: c.Tags, customID: c.CustomID, value: c}
			}
			return out
		}}
	plugins = &collection{path: "plugins", entity: "plugins", key: "instance_name",
		links: []string{"consumer", "route", "service"},
		items: func(e *config.Entities) []item {
			out := make([]item, len(e.Plugins))
			for i := range e.Plugins {
				p := &e.Plugins[i]
				refs := map[string]string{}
				fk(refs, "route", p.Route)
				fk(refs, "service", p.Service)
				fk(refs, "consumer", p.Consumer)
				out[i] = item{id: p.ID, key: str(p.InstanceName), tags: p.Tags, refs: refs, value: p}
			}
			return out
		}}
	upstreams = &collection{path: "upstreams", entity: "upstreams", key: "name",
		items: func(e *config.Entities) []item {
			out := make([]item, len(e.Upstreams))
			for i := range e.Upstreams {
				u := &e.Upstreams[i]
				out[i] = item{id: u.ID, key: u.Name, tags: u.Tags, value: u}
			}
			return out
		}}
	targets = &collection{path: "targets", entity: "targets", key: "target", nestedOnly: true,
		items: func(e *config.Entities) []item {
			out := make([]item, len(e.Targets))
			for i := range e.Targets {
				t := &e.Targets[i]
				refs := map[string]string{}
				fk(refs, "upstream", t.Upstream)
				out[i] = item{id: t.ID, key: t.Target, tags: t.Tags, refs: refs, value: t}
			}
			return out
		}}
	certificates = &collection{path: "certificates", entity: "certificates",
		items: func(e *config.Entities) []item {
			names := map[string][]string{}
			for _, s := range e.SNIs {
				if s.Certificate != nil {
					names[s.Certificate.ID] = append(names[s.Certificate.ID], s.Name)
				}
			}
			out := make([]item, len(e.Certificates))
			for i := range e.Certificates {
				c := e.Certificates[i] // a copy: its snis are the SNI entities' names
				c.SNIs = names[c.ID]
				slices.Sort(c.SNIs)
				if c.SNIs == nil {
					c.SNIs = []string{}
				}
				out[i] = item{id: c.ID, tags: c.Tags, value: &c}
			}
			return out
		}}
	snis = &collection{path: "snis", entity: "snis", key: "name", links: []string{"certificate"},
		items: func(e *config.Entities) []item {
			out := make([]item, len(e.SNIs))
			for i := range e.SNIs {
				s := &e.SNIs[i]
				refs := map[string]string{}
				fk(refs, "certificate", s.Certificate)
				out[i] = item{id: s.ID, key: s.Name, tags: s.Tags, refs: refs, value: s}
			}
			return out
		}}
	keyauths = &collection{path: "key-auths", entity: "keyauth_credentials", key: "key", links: []string{"consumer"},
		items: func(e *config.Entities) []item {
			out := make([]item, len(e.KeyauthCredentials))
			for i := range e.KeyauthCredentials {
				k := &e.KeyauthCredentials[i]
				refs := map[string]string{}
				fk(refs, "consumer", k.Consumer)
				out[i] = item{id: k.ID, key: k.Key, tags: k.Tags, refs: refs, value: k}
			}
			return out
		}}
)

// collections in §5.1 order.
var collections = []*collection{services, routes, consumers, plugins, upstreams, targets, certificates, snis, keyauths}

// linkTargets maps a foreign key field to the collection it references.
var linkTargets = map[string]*collection{
	"service": services, "route": routes, "consumer": consumers, "upstream": upstreams,
	"certificate": certificates,
}

// nestings are the child collections of §4.3.
var nestings = []nesting{
	{services, routes, "routes", "service"},
	{services, plugins, "plugins", "service"},
	{routes, plugins, "plugins", "route"},
	{consumers, plugins, "plugins", "consumer"},
	{consumers, keyauths, "key-auth", "consumer"},
	{upstreams, targets, "targets", "upstream"},
	{certificates, snis, "snis", "certificate"},
}

// emptyListings are the kinds datakit does not implement that decK and
// go-kong read during ping, dump and sync (§4.3): GET answers an empty
// list.
var emptyListings = []string{
	"acls", "basic-auths", "ca_certificates", "consumer_groups", "custom-entities", "degraphql_routes",
	"filter-chains", "hmac-auths", "jwts", "key-sets", "keys", "licenses", "mtls-auths", "oauth2",
	"partials", "vaults",
}

// find looks an entity up by id (UUID-shaped ref) or endpoint key.
func (c *collection) find(items []item, ref string) (item, bool) {
	if config.IsUUID(ref) {
		id := strings.ToLower(ref)
		i, ok := slices.BinarySearchFunc(items, id, func(it item, id string) int { return strings.Compare(it.id, id) })
		if ok {
			return items[i], true
		}
		return item{}, false
	}
	if c.key == "" {
		return item{}, false
	}
	for _, it := range items {
		if it.key == ref && ref != "" {
			return it, true
		}
	}
	return item{}, false
}

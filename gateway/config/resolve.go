package config

import (
	"fmt"
	"slices"
	"strings"
)

// lookup finds declared entities by id and by endpoint key.
type lookup struct {
	byID  map[string]map[string]*record
	byKey map[string]map[string]*record
}

// uniqueFields lists the unique fields (label and value) of a record, whose
// first declaration wins; the endpoint key comes first.
func (l *loader) uniqueFields(rec *record) [][2]string {
	e := &l.ents
	i := rec.index
	var out [][2]string
	add := func(field string, v *string) {
		if v != nil && *v != "" {
			out = append(out, [2]string{field, *v})
		}
	}
	switch rec.kind {
	case "services":
		add("name", e.Services[i].Name)
	case "routes":
		add("name", e.Routes[i].Name)
	case "consumers":
		add("username", e.Consumers[i].Username)
		add("custom_id", e.Consumers[i].CustomID)
	case "plugins":
		add("instance_name", e.Plugins[i].InstanceName)
	case "upstreams":
		add("name", &e.Upstreams[i].Name)
	case "snis":
		add("name", &e.SNIs[i].Name)
	case "keyauth_credentials":
		add("key", &e.KeyauthCredentials[i].Key)
	}
	return out
}

// endpointKeyField is the field references may name instead of an id.
var endpointKeyField = map[string]string{
	"services": "name", "routes": "name", "consumers": "username", "upstreams": "name",
}

func uniquenessError(kind, field, value string) string {
	if field == "id" {
		return fmt.Sprintf("uniqueness violation: '%s' entity with primary key set to '%s' already declared", kind, value)
	}
	return fmt.Sprintf("uniqueness violation: '%s' entity with %s set to '%s' already declared", kind, field, value)
}

// resolve checks document-wide uniqueness, turns references into ids and
// derives target ids, which need their upstream's id (§5.2, §5.3).
func (l *loader) resolve() {
	lk := lookup{byID: map[string]map[string]*record{}, byKey: map[string]map[string]*record{}}
	for _, c := range collections {
		lk.byID[c] = map[string]*record{}
		lk.byKey[c] = map[string]*record{}
	}
	seen := map[string]bool{}
	unique := func(rec *record, field, value string) {
		k := rec.kind + "\x00" + field + "\x00" + value
		if seen[k] {
			rec.errs.AddEntity(uniquenessError(rec.kind, field, value))
		}
		seen[k] = true
	}
	for _, rec := range l.records {
		if rec.kind == "targets" {
			continue
		}
		if !rec.derived {
			unique(rec, "id", rec.id)
		}
		if _, dup := lk.byID[rec.kind][rec.id]; !dup {
			lk.byID[rec.kind][rec.id] = rec
		}
		for _, f := range l.uniqueFields(rec) {
			unique(rec, f[0], f[1])
			if f[0] == endpointKeyField[rec.kind] {
				if _, dup := lk.byKey[rec.kind][f[1]]; !dup {
					lk.byKey[rec.kind][f[1]] = rec
				}
			}
		}
	}

	for _, rec := range l.records {
		l.references(rec, &lk)
	}

	// Targets: ids from the upstream id and the target as written, then
	// (upstream, target) uniqueness.
	for _, rec := range l.records {
		if rec.kind != "targets" {
			continue
		}
		t := &l.ents.Targets[rec.index]
		if rec.id == "" {
			up := ""
			if t.Upstream != nil {
				up = t.Upstream.ID
			}
			rec.id = DeterministicID("targets", "targets:*:"+up+":"+rec.rawTarget)
			rec.derived = true
			l.setID(rec)
		}
		if !rec.derived {
			unique(rec, "id", rec.id)
		}
		if t.Upstream != nil && t.Target != "" {
			unique(rec, "upstream and target", fmt.Sprintf("{target=%q,upstream={id=%q}}", t.Target, t.Upstream.ID))
		}
	}
	// One plugin per (name, route, service, consumer) once references are ids.
	for _, rec := range l.records {
		if rec.kind != "plugins" {
			continue
		}
		p := &l.ents.Plugins[rec.index]
		if p.Name != "" {
			unique(rec, "name, route, service and consumer", PluginUniqueKey(p))
		}
	}
}

// PluginUniqueKey renders a plugin's (consumer, name, route, service) in
// Kong's key notation, keys sorted:
// {consumer=null,name="key-auth",route=null,service={id="…"}}.
func PluginUniqueKey(p *Plugin) string {
	fk := func(f *ForeignKey) string {
		if f == nil {
			return "null"
		}
		return fmt.Sprintf("{id=%q}", f.ID)
	}
	return fmt.Sprintf("{consumer=%s,name=%q,route=%s,service=%s}", fk(p.Consumer), p.Name, fk(p.Route), fk(p.Service))
}

// references resolves every foreign key of one record.
func (l *loader) references(rec *record, lk *lookup) {
	e := &l.ents
	i := rec.index
	ref := func(field, coll string, fk **ForeignKey) {
		f := *fk
		if f == nil || !rec.errs.children[field].Empty() {
			return
		}
		target := lk.byID[coll][f.ID]
		if target == nil {
			target = lk.byKey[coll][f.written()]
		}
		if target == nil {
			rec.errs.Field(field).Addf("invalid reference '%s: %s' (no such entry in '%s')", field, f.written(), coll)
			*fk = nil
			return
		}
		*fk = &ForeignKey{ID: target.id}
	}
	switch rec.kind {
	case "services":
		ref("client_certificate", "certificates", &e.Services[i].ClientCertificate)
	case "routes":
		ref("service", "services", &e.Routes[i].Service)
	case "plugins":
		p := &e.Plugins[i]
		ref("route", "routes", &p.Route)
		ref("service", "services", &p.Service)
		ref("consumer", "consumers", &p.Consumer)
	case "upstreams":
		ref("client_certificate", "certificates", &e.Upstreams[i].ClientCertificate)
	case "targets":
		ref("upstream", "upstreams", &e.Targets[i].Upstream)
	case "snis":
		ref("certificate", "certificates", &e.SNIs[i].Certificate)
	case "keyauth_credentials":
		ref("consumer", "consumers", &e.KeyauthCredentials[i].Consumer)
	}
}

// finish stamps times, generates missing key-auth keys, lists each
// certificate's SNI names and sorts every collection by id.
func (l *loader) finish() error {
	now := l.opts.Now.Unix()
	ms := float64(l.opts.Now.UnixMilli()) / 1000
	e := &l.ents
	stamp := func(created, updated *int64) {
		if *created == 0 {
			*created = now
		}
		*updated = now
	}
	for i := range e.Services {
		stamp(&e.Services[i].CreatedAt, &e.Services[i].UpdatedAt)
	}
	for i := range e.Routes {
		stamp(&e.Routes[i].CreatedAt, &e.Routes[i].UpdatedAt)
	}
	for i := range e.Consumers {
		stamp(&e.Consumers[i].CreatedAt, &e.Consumers[i].UpdatedAt)
	}
	for i := range e.Plugins {
		stamp(&e.Plugins[i].CreatedAt, &e.Plugins[i].UpdatedAt)
	}
	for i := range e.Upstreams {
		stamp(&e.Upstreams[i].CreatedAt, &e.Upstreams[i].UpdatedAt)
	}
	for i := range e.Targets {
		if e.Targets[i].CreatedAt == 0 {
			e.Targets[i].CreatedAt = ms
		}
		e.Targets[i].UpdatedAt = ms
	}
	for i := range e.SNIs {
		stamp(&e.SNIs[i].CreatedAt, &e.SNIs[i].UpdatedAt)
	}
	for i := range e.KeyauthCredentials {
		k := &e.KeyauthCredentials[i]
		if k.CreatedAt == 0 {
			k.CreatedAt = now
		}
		if k.Key == "" {
			key, err := GenerateKey(l.opts.Rand)
			if err != nil {
				return err
			}
			k.Key = key
		}
	}
	names := map[string][]string{}
	for _, s := range e.SNIs {
		names[s.Certificate.ID] = append(names[s.Certificate.ID], s.Name)
	}
	for i := range e.Certificates {
		c := &e.Certificates[i]
		stamp(&c.CreatedAt, &c.UpdatedAt)
		c.SNIs = append([]string{}, names[c.ID]...)
		slices.Sort(c.SNIs)
	}
	sortByID(e.Services, func(x Service) string { return x.ID })
	sortByID(e.Routes, func(x Route) string { return x.ID })
	sortByID(e.Consumers, func(x Consumer) string { return x.ID })
	sortByID(e.Plugins, func(x Plugin) string { return x.ID })
	sortByID(e.Upstreams, func(x Upstream) string { return x.ID })
	sortByID(e.Targets, func(x Target) string { return x.ID })
	sortByID(e.Certificates, func(x Certificate) string { return x.ID })
	sortByID(e.SNIs, func(x SNI) string { return x.ID })
	sortByID(e.KeyauthCredentials, func(x KeyauthCredential) string { return x.ID })
	return nil
}

func sortByID[T any](s []T, id func(T) string) {
	slices.SortFunc(s, func(a, b T) int { return strings.Compare(id(a), id(b)) })
}

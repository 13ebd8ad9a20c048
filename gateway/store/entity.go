package store

import (
	"github.com/datakit-gateway/datakit/gateway/config"
)

// fkInfo describes one foreign key column.
type fkInfo struct {
	field    string // entity field: "service"
	column   string // table column: "service_id"
	parent   Kind
	keyField string // the parent's endpoint key as references name it
	// restrict refuses deleting the parent while this reference exists;
	// otherwise the database cascades.
	restrict bool
}

// kindInfo is what the store knows of a collection's table.
type kindInfo struct {
	// key is the endpoint key column ("" when the collection has none).
	key string
	// lookups are the single-column unique fields GetBy accepts.
	lookups []string
	fks     []fkInfo
}

var kindInfos = map[Kind]*kindInfo{
	Certificates: {},
	Services: {key: "name", lookups: []string{"name"}, fks: []fkInfo{
		{field: "client_certificate", column: "client_certificate_id", parent: Certificates, keyField: "id", restrict: true},
	}},
	Routes: {key: "name", lookups: []string{"name"}, fks: []fkInfo{
		{field: "service", column: "service_id", parent: Services, keyField: "name", restrict: true},
	}},
	Consumers: {key: "username", lookups: []string{"username", "custom_id"}},
	Plugins: {key: "instance_name", lookups: []string{"instance_name"}, fks: []fkInfo{
		{field: "route", column: "route_id", parent: Routes, keyField: "name"},
		{field: "service", column: "service_id", parent: Services, keyField: "name"},
		{field: "consumer", column: "consumer_id", parent: Consumers, keyField: "username"},
	}},
	Upstreams: {key: "name", lookups: []string{"name"}, fks: []fkInfo{
		{field: "client_certificate", column: "client_certificate_id", parent: Certificates, keyField: "id", restrict: true},
	}},
	Targets: {fks: []fkInfo{
		{field: "upstream", column: "upstream_id", parent: Upstreams, keyField: "name"},
	}},
	SNIs: {key: "name", lookups: []string{"name"}, fks: []fkInfo{
		{field: "certificate", column: "certificate_id", parent: Certificates, keyField: "id"},
	}},
	KeyauthCredentials: {key: "key", lookups: []string{"key"}, fks: []fkInfo{
		{field: "consumer", column: "consumer_id", parent: Consumers, keyField: "username"},
	}},
}

// column is a typed column value: nil or a string.
type column struct {
	name  string
	value any
}

// uniqueGroup is one unique constraint as the entity fills it.
type uniqueGroup struct {
	columns []column
	// fields renders the violation's fields.
	fields func() map[string]any
	// key overrides the key notation of fields (plugins use config's).
	key func() string
}

// entity adapts one config entity pointer to the table layout.
type entity struct {
	kind Kind
	v    any
	id   *string
	tags []string
	fks  []*(*config.ForeignKey)

	// Timestamps: integer seconds, or fractional for targets; updatedInt
	// is nil for key-auth credentials (they have no updated_at).
	createdInt, updatedInt     *int64
	createdFloat, updatedFloat *float64
}

func adapt(v any) (*entity, error) {
	kind, err := KindOf(v)
	if err != nil {
		return nil, err
	}
	e := &entity{kind: kind, v: v}
	switch x := v.(type) {
	case *config.Service:
		e.id, e.tags, e.createdInt, e.updatedInt = &x.ID, x.Tags, &x.CreatedAt, &x.UpdatedAt
		e.fks = []**config.ForeignKey{&x.ClientCertificate}
	case *config.Route:
		e.id, e.tags, e.createdInt, e.updatedInt = &x.ID, x.Tags, &x.CreatedAt, &x.UpdatedAt
		e.fks = []**config.ForeignKey{&x.Service}
	case *config.Consumer:
		e.id, e.tags, e.createdInt, e.updatedInt = &x.ID, x.Tags, &x.CreatedAt, &x.UpdatedAt
	case *config.Plugin:
		e.id, e.tags, e.createdInt, e.updatedInt = &x.ID, x.Tags, &x.CreatedAt, &x.UpdatedAt
		e.fks = []**config.ForeignKey{&x.Route, &x.Service, &x.Consumer}
	case *config.Upstream:
		e.id, e.tags, e.createdInt, e.updatedInt = &x.ID, x.Tags, &x.CreatedAt, &x.UpdatedAt
		e.fks = []**config.ForeignKey{&x.ClientCertificate}
	case *config.Target:
		e.id, e.tags, e.createdFloat, e.updatedFloat = &x.ID, x.Tags, &x.CreatedAt, &x.UpdatedAt
		e.fks = []**config.ForeignKey{&x.Upstream}
	case *config.Certificate:
		e.id, e.tags, e.createdInt, e.updatedInt = &x.ID, x.Tags, &x.CreatedAt, &x.UpdatedAt
	case *config.SNI:
		e.id, e.tags, e.createdInt, e.updatedInt = &x.ID, x.Tags, &x.CreatedAt, &x.UpdatedAt
		e.fks = []**config.ForeignKey{&x.Certificate}
	case *config.KeyauthCredential:
		e.id, e.tags, e.createdInt = &x.ID, x.Tags, &x.CreatedAt
		e.fks = []**config.ForeignKey{&x.Consumer}
	}
	return e, nil
}

func (e *entity) info() *kindInfo { return kindInfos[e.kind] }

// columns are the typed columns besides id, timestamps, tags and entity,
// valid once foreign keys are resolved.
func (e *entity) columns() []column {
	var cols []column
	switch x := e.v.(type) {
	case *config.Service:
		cols = []column{{"name", strOrNil(x.Name)}}
	case *config.Route:
		cols = []column{{"name", strOrNil(x.Name)}}
	case *config.Consumer:
		cols = []column{{"username", strOrNil(x.Username)}, {"custom_id", strOrNil(x.CustomID)}}
	case *config.Plugin:
		cols = []column{{"name", x.Name}, {"instance_name", strOrNil(x.InstanceName)}, {"scope_key", scopeKey(x)}}
	case *config.Upstream:
		cols = []column{{"name", x.Name}}
	case *config.Target:
		cols = []column{{"target", x.Target}}
	case *config.SNI:
		cols = []column{{"name", x.Name}}
	case *config.KeyauthCredential:
		cols = []column{{"key", x.Key}}
	}
	for i, fk := range e.info().fks {
		cols = append(cols, column{fk.column, fkID(*e.fks[i])})
	}
	return cols
}

// uniques lists the entity's unique constraints that hold a value (NULLs
// never collide).
func (e *entity) uniques() []uniqueGroup {
	single := func(field string, v *string) []uniqueGroup {
		if v == nil {
			return nil
		}
		val := *v
		return []uniqueGroup{{
			columns: []column{{field, val}},
			fields:  func() map[string]any { return map[string]any{field: val} },
		}}
	}
	switch x := e.v.(type) {
	case *config.Service:
		return single("name", x.Name)
	case *config.Route:
		return single("name", x.Name)
	case *config.Consumer:
		return append(single("username", x.Username), single("custom_id", x.CustomID)...)
	case *config.Plugin:
		scope := uniqueGroup{
			columns: []column{{"scope_key", scopeKey(x)}},
			fields: func() map[string]any {
				return map[string]any{"consumer": fkValue(x.Consumer), "name": x.Name,
					"route": fkValue(x.Route), "service": fkValue(x.Service)}
			},
			key: func() string { return config.PluginUniqueKey(x) },
		}
		return append(single("instance_name", x.InstanceName), scope)
	case *config.Upstream:
		return single("name", &x.Name)
	case *config.Target:
		return []uniqueGroup{{
			columns: []column{{"upstream_id", fkID(x.Upstream)}, {"target", x.Target}},
			fields: func() map[string]any {
				return map[string]any{"target": x.Target, "upstream": fkValue(x.Upstream)}
			},
		}}
	case *config.SNI:
		return single("name", &x.Name)
	case *config.KeyauthCredential:
		return single("key", &x.Key)
	}
	return nil
}

// scopeKey is plugins.scope_key: <name>:<route_id>:<service_id>:<consumer_id>
// (§6.3), empty parts for unset scopes.
func scopeKey(p *config.Plugin) string {
	id := func(f *config.ForeignKey) string {
		if f == nil {
			return ""
		}
		return f.ID
	}
	return p.Name + ":" + id(p.Route) + ":" + id(p.Service) + ":" + id(p.Consumer)
}

func strOrNil(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}

func fkID(f *config.ForeignKey) any {
	if f == nil {
		return nil
	}
	return f.ID
}

func fkValue(f *config.ForeignKey) any {
	if f == nil {
		return nil
	}
	return map[string]any{"id": f.ID}
}

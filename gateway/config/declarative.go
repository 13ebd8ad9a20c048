package config

import (
	"cmp"
	"crypto/md5" // #nosec G501 -- Kong's configuration hash, not a security control
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Entities is a resolved, validated and defaulted set of entities: every id
// set, every reference an id, each collection sorted by id. The gateway
// compiles it into a snapshot; the store imports it.
type Entities struct {
	Services           []Service           `json:"services"`
	Routes             []Route             `json:"routes"`
	Consumers          []Consumer          `json:"consumers"`
	Plugins            []Plugin            `json:"plugins"`
	Upstreams          []Upstream          `json:"upstreams"`
	Targets            []Target            `json:"targets"`
	Certificates       []Certificate       `json:"certificates"`
	SNIs               []SNI               `json:"snis"`
	KeyauthCredentials []KeyauthCredential `json:"keyauth_credentials"`
}

// Count is the number of entities of every kind.
func (e *Entities) Count() int {
	return len(e.Services) + len(e.Routes) + len(e.Consumers) + len(e.Plugins) + len(e.Upstreams) +
		len(e.Targets) + len(e.Certificates) + len(e.SNIs) + len(e.KeyauthCredentials)
}

// EmptyHash is the configuration hash reported when nothing is loaded (§5.6).
const EmptyHash = "00000000000000000000000000000000"

// Hash is the configuration hash of a declarative text: MD5, hex (§4.8, §5.6).
func Hash(text []byte) string {
	sum := md5.Sum(text) // #nosec G401 -- as the import: an identifier Kong clients compare
	return hex.EncodeToString(sum[:])
}

// Collections in the order of §5.1, which export follows too.
var collections = []string{
	"services", "routes", "consumers", "plugins", "upstreams", "targets",
	"certificates", "snis", "keyauth_credentials",
}

// collectionTypes names an entity of each collection in flattened errors.
var collectionTypes = map[string]string{ // #nosec G101 -- collection names, not credentials
	"services": "service", "routes": "route", "consumers": "consumer", "plugins": "plugin",
	"upstreams": "upstream", "targets": "target", "certificates": "certificate", "snis": "sni",
	"keyauth_credentials": "keyauth_credential",
}

// nestedCollections lists what each collection nests (§5.2); "" is the
// document's top level.
var nestedCollections = map[string][]string{
	"":             collections,
	"services":     {"routes", "plugins"},
	"routes":       {"plugins"},
	"consumers":    {"plugins", "keyauth_credentials"},
	"upstreams":    {"targets"},
	"certificates": {"snis"},
}

// parentField is the foreign key a nested entity gets from its parent
// collection.
var parentField = map[string]string{
	"services": "service", "routes": "route", "consumers": "consumer",
	"upstreams": "upstream", "certificates": "certificate",
}

// kongNamespace is Kong's root namespace for declarative ids (§5.3).
var kongNamespace = uuid.MustParse("fd02801f-0957-4a15-a55a-c8d9606f30b5")

// DeterministicID is UUIDv5(ns(collection), key) with ns(E) =
// UUIDv5(Kong's root namespace, E), as §5.3 derives ids.
func DeterministicID(collection, key string) string {
	ns := uuid.NewSHA1(kongNamespace, []byte(collection))
	return uuid.NewSHA1(ns, []byte(key)).String()
}

// LoadOptions configure LoadDeclarative.
type LoadOptions struct {
	// Plugins validates plugin configs; nil means no plugin is loaded.
	Plugins PluginSchemas
	// Limits bound parsing; the zero value means DefaultLimits().
	Limits Limits
	// Now stamps created_at (when absent) and updated_at; zero means
	// time.Now().
	Now time.Time
	// Rand feeds random ids and generated keys; nil means crypto/rand.
	Rand io.Reader
}

// LoadDeclarative parses a declarative document (YAML or JSON) and returns
// its entities, or a *DeclarativeError holding every problem found.
func LoadDeclarative(data []byte, opts LoadOptions) (*Entities, error) {
	lim := opts.Limits
	if lim == (Limits{}) {
		lim = DefaultLimits()
	}
	doc, err := ParseDocument(data, lim)
	if err != nil {
		return nil, &DeclarativeError{Parse: err}
	}
	return DecodeDeclarative(doc, opts)
}

// DecodeDeclarative is LoadDeclarative for a document already parsed into
// plain values (the Admin API's JSON bodies).
func DecodeDeclarative(doc any, opts LoadOptions) (*Entities, error) {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	l := &loader{opts: opts, tree: &FieldErrors{}}
	top, ok := doc.(map[string]any)
	if !ok {
		if doc == nil {
			l.tree.Field("_format_version").Add("required field missing")
		} else {
			l.tree.AddEntity("expected a record")
		}
		return nil, l.failure()
	}
	l.document(top)
	l.resolve()
	if l.failed() {
		return nil, l.failure()
	}
	if err := l.finish(); err != nil {
		return nil, err
	}
	return &l.ents, nil
}

// record is one entity of the document, kept for references, uniqueness and
// flattened errors.
type record struct {
	kind  string
	path  []string
	input map[string]any // as given, minus nested children, parent as {"id":…}
	errs  *FieldErrors
	index int    // position in its Entities slice
	id    string // given or derived
	// target as written, which its deterministic id is derived from
	rawTarget string
	// derived ids collide only when their keys do, which is reported on the
	// key; a certificate's is the exception (its key is the cert itself).
	derived bool
}

type loader struct {
	opts    LoadOptions
	tree    *FieldErrors
	format  string
	ents    Entities
	records []*record
}

type parent struct {
	field, id string
}

func (l *loader) failed() bool {
	if !l.tree.Empty() {
		return true
	}
	for _, r := range l.records {
		if !r.errs.Empty() {
			return true
		}
	}
	return false
}

// failure assembles the error tree and the flattened errors.
func (l *loader) failure() error {
	de := &DeclarativeError{Fields: l.tree}
	for _, r := range l.records {
		if r.errs.Empty() {
			continue
		}
		node := l.tree
		for _, p := range r.path {
			node = node.Field(p)
		}
		node.Merge(r.errs)
		de.Flattened = append(de.Flattened, r.flattened())
	}
	return de
}

func (r *record) flattened() FlattenedError {
	f := FlattenedError{EntityType: collectionTypes[r.kind], EntityID: r.id, Entity: r.input}
	if n, ok := r.input["name"].(string); ok {
		f.EntityName = n
	} else if n, ok := r.input["username"].(string); ok {
		f.EntityName = n
	}
	if tags, ok := r.input["tags"].([]any); ok {
		for _, t := range tags {
			if s, ok := t.(string); ok {
				f.EntityTags = append(f.EntityTags, s)
			}
		}
	}
	for _, e := range r.errs.Flatten() {
		if e.Path == "" {
			f.Errors = append(f.Errors, FlattenedEntry{Type: "entity", Message: e.Message})
		} else {
			f.Errors = append(f.Errors, FlattenedEntry{Type: "field", Field: e.Path, Message: e.Message})
		}
	}
	return f
}

func (l *loader) document(top map[string]any) {
	r := newReader(top, l.tree)
	switch v := top["_format_version"].(type) {
	case nil:
		l.tree.Field("_format_version").Add("required field missing")
	case float64: // an unquoted 3.0 in YAML
		l.format = "?"
		for _, f := range []string{"1.1", "2.1", "3.0"} {
			if n, _ := strconv.ParseFloat(f, 64); n == v {
				l.format = f
			}
		}
	case string:
		l.format = v
	default:
		l.tree.Field("_format_version").Add("expected a string")
	}
	r.read["_format_version"] = true
	if l.format != "" && !slices.Contains([]string{"1.1", "2.1", "3.0"}, l.format) {
		l.tree.Field("_format_version").Add("expected one of: 1.1, 2.1, 3.0")
	}
	var transform bool
	r.boolean("_transform", &transform)
	r.get("_comment")
	r.get("_ignore")
	for _, c := range collections {
		v, ok := r.get(c)
		if !ok {
			continue
		}
		l.collection(c, v, []string{c}, nil, l.tree.Field(c))
	}
	r.done()
}

// collection walks an array of entities at path; errs is where an error
// about the array itself goes.
func (l *loader) collection(kind string, v any, path []string, p *parent, errs *FieldErrors) {
	arr, ok := v.([]any)
	if !ok {
		errs.Add("expected an array")
		return
	}
	for i, e := range arr {
		ep := append(slices.Clone(path), strconv.Itoa(i+1))
		m, ok := e.(map[string]any)
		if kind == "snis" && p != nil {
			if s, isStr := e.(string); isStr { // certificates[].snis may list names
				m, ok = map[string]any{"name": s}, true
			}
		}
		if !ok {
			errs.Index(i).Add("expected a record")
			continue
		}
		l.entity(kind, m, ep, p)
	}
}

// entity decodes one entity and, depth first, its nested children.
func (l *loader) entity(kind string, in map[string]any, path []string, p *parent) {
	rec := &record{kind: kind, path: path, errs: &FieldErrors{}}
	l.records = append(l.records, rec)

	input := make(map[string]any, len(in))
	nested := map[string]any{}
	for k, v := range in {
		switch {
		case k == "_comment" || k == "_ignore":
		case slices.Contains(nestedCollections[kind], k):
			nested[k] = v
		default:
			input[k] = v
		}
	}
	if kind == "certificates" {
		// The certificate's own snis field becomes nested SNI entities.
		if s, ok := nested["snis"]; ok && s == nil {
			delete(nested, "snis")
		}
	}
	dec := input
	if p != nil {
		if _, set := input[p.field]; set {
			rec.errs.Field(p.field).Add("value must be null")
		}
		dec = make(map[string]any, len(input)+1)
		for k, v := range input {
			dec[k] = v
		}
		dec[p.field] = p.id
		input = cloneMap(input)
		input[p.field] = map[string]any{"id": p.id}
	}
	if kind == "routes" && l.format != "3.0" && l.format != "" {
		dec = migrateRoute(dec)
	}
	rec.input = input
	l.decode(rec, dec)

	for _, nk := range nestedCollections[kind] {
		v, ok := nested[nk]
		if !ok || v == nil {
			continue
		}
		field := parentField[kind]
		l.collection(nk, v, append(slices.Clone(path), nk), &parent{field: field, id: rec.id}, rec.errs.Field(nk))
	}
}

func cloneMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// migrateRoute rewrites the paths of a "1.1"/"2.1" route (§5.5).
func migrateRoute(in map[string]any) map[string]any {
	paths, ok := in["paths"].([]any)
	if !ok {
		return in
	}
	out := cloneMap(in)
	np := make([]any, len(paths))
	for i, p := range paths {
		if s, ok := p.(string); ok {
			np[i] = migratePath(s)
		} else {
			np[i] = p
		}
	}
	out["paths"] = np
	return out
}

// decode runs the entity's decoder, appends it and derives its id (§5.3);
// target ids wait for their upstream's id (resolve).
func (l *loader) decode(rec *record, in map[string]any) {
	var errs *FieldErrors
	var key string
	e := &l.ents
	switch rec.kind {
	case "services":
		s, fe := DecodeService(in)
		errs, key, rec.index = fe, deref(s.Name), len(e.Services)
		rec.id = s.ID
		e.Services = append(e.Services, s)
	case "routes":
		r, fe := DecodeRoute(in)
		errs, key, rec.index = fe, deref(r.Name), len(e.Routes)
		rec.id = r.ID
		e.Routes = append(e.Routes, r)
	case "consumers":
		c, fe := DecodeConsumer(in)
		errs, rec.index = fe, len(e.Consumers)
		key = cmp.Or(deref(c.Username), deref(c.CustomID))
		rec.id = c.ID
		e.Consumers = append(e.Consumers, c)
	case "plugins":
		p, fe := DecodePlugin(in, l.opts.Plugins)
		errs, rec.index = fe, len(e.Plugins)
		key = strings.Join([]string{"plugins:*", p.Name, p.Route.written(), p.Service.written(), p.Consumer.written()}, ":")
		rec.id = p.ID
		e.Plugins = append(e.Plugins, p)
	case "upstreams":
		u, fe := DecodeUpstream(in)
		errs, key, rec.index = fe, u.Name, len(e.Upstreams)
		rec.id = u.ID
		e.Upstreams = append(e.Upstreams, u)
	case "targets":
		t, fe := DecodeTarget(in)
		errs, rec.index = fe, len(e.Targets)
		rec.rawTarget, _ = in["target"].(string)
		rec.id = t.ID
		e.Targets = append(e.Targets, t)
	case "certificates":
		c, fe := DecodeCertificate(in)
		errs, rec.index = fe, len(e.Certificates)
		if c.Cert != "" {
			sum := sha256.Sum256([]byte(c.Cert))
			key = hex.EncodeToString(sum[:])
		}
		rec.id = c.ID
		e.Certificates = append(e.Certificates, c)
	case "snis":
		s, fe := DecodeSNI(in)
		errs, key, rec.index = fe, s.Name, len(e.SNIs)
		rec.id = s.ID
		e.SNIs = append(e.SNIs, s)
	case "keyauth_credentials":
		k, fe := DecodeKeyauthCredential(in)
		errs, rec.index = fe, len(e.KeyauthCredentials)
		rec.id = k.ID
		e.KeyauthCredentials = append(e.KeyauthCredentials, k)
	}
	rec.errs.Merge(errs)
	switch {
	case rec.id != "" || rec.kind == "targets":
	case key != "" && rec.kind != "keyauth_credentials":
		rec.id = DeterministicID(rec.kind, key)
		rec.derived = rec.kind != "certificates"
	default:
		// No key (a nameless route) or a key-auth credential, whose key must
		// not be published through a hash of it: random, as Kong.
		id, err := uuid.NewRandomFromReader(l.opts.Rand)
		if err != nil {
			rec.errs.Field("id").Add("cannot generate an id: " + err.Error())
		}
		rec.id = id.String()
	}
	l.setID(rec)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// setID writes rec.id into its entity.
func (l *loader) setID(rec *record) {
	e := &l.ents
	i := rec.index
	switch rec.kind {
	case "services":
		e.Services[i].ID = rec.id
	case "routes":
		e.Routes[i].ID = rec.id
	case "consumers":
		e.Consumers[i].ID = rec.id
	case "plugins":
		e.Plugins[i].ID = rec.id
	case "upstreams":
		e.Upstreams[i].ID = rec.id
	case "targets":
		e.Targets[i].ID = rec.id
	case "certificates":
		e.Certificates[i].ID = rec.id
	case "snis":
		e.SNIs[i].ID = rec.id
	case "keyauth_credentials":
		e.KeyauthCredentials[i].ID = rec.id
	}
}

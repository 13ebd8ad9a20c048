package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/datakit-gateway/datakit/gateway/config"
	"github.com/datakit-gateway/datakit/gateway/store"
)

// Kong's error codes (§4.7).
const (
	codeSchemaViolation      = 2
	codePrimaryKeyViolation  = 3
	codeForeignKeyViolation  = 4
	codeUniqueViolation      = 5
	codeInvalidOffset        = 7
	codeInvalidSize          = 9
	codeInvalidOptions       = 11
	codeOperationUnsupported = 12
	codeForeignKeyUnresolved = 13
	codeInvalidDeclarative   = 14
)

var codeNames = map[int]string{
	codeSchemaViolation:      "schema violation",
	codePrimaryKeyViolation:  "primary key violation",
	codeForeignKeyViolation:  "foreign key violation",
	codeUniqueViolation:      "unique constraint violation",
	codeInvalidOffset:        "invalid offset",
	codeInvalidSize:          "invalid size",
	codeInvalidOptions:       "invalid options",
	codeOperationUnsupported: "operation unsupported",
	codeForeignKeyUnresolved: "foreign keys unresolved",
	codeInvalidDeclarative:   "invalid declarative configuration",
}

// Error is an Admin API error with its complete response: Kong's
// {code,name,message,fields} body, or {message} when Code is 0.
type Error struct {
	Status  int
	Code    int
	Message string
	// Fields is the "fields" member (a *config.FieldErrors, a map);
	// nil leaves it out.
	Fields any
	// Options is the "options" member of code 11.
	Options map[string]string
	// Header holds extra response headers (Allow, Retry-After).
	Header http.Header
}

func (e *Error) Error() string { return e.Message }

// body is the JSON body of an Error. Members are in Kong's order.
type errorBody struct {
	Code      int                      `json:"code,omitempty"`
	Name      string                   `json:"name,omitempty"`
	Message   string                   `json:"message"`
	Fields    any                      `json:"fields,omitempty"`
	Options   map[string]string        `json:"options,omitempty"`
	Flattened *[]config.FlattenedError `json:"flattened_errors,omitempty"`
}

// Plain errors of §4.1, §4.2, §4.8.
var (
	errNotFound            = &Error{Status: http.StatusNotFound, Message: "Not found"}
	errMethodNotAllowed    = &Error{Status: http.StatusMethodNotAllowed, Message: "Method not allowed"}
	errUnauthorized        = &Error{Status: http.StatusUnauthorized, Message: "Invalid credentials. Token or User credentials required"}
	errHostNotAllowed      = &Error{Status: http.StatusForbidden, Message: "Host not allowed"}
	errCrossOrigin         = &Error{Status: http.StatusForbidden, Message: "cross-origin request rejected"}
	errBrowserForm         = &Error{Status: http.StatusForbidden, Message: "form writes from a browser require admin_token"}
	errTooLarge            = &Error{Status: http.StatusRequestEntityTooLarge, Message: "Payload too large"}
	errMultipleTypes       = &Error{Status: http.StatusBadRequest, Message: "Multiple Content-Type headers not allowed"}
	errBadJSON             = &Error{Status: http.StatusBadRequest, Message: "Cannot parse JSON body"}
	errBadForm             = &Error{Status: http.StatusBadRequest, Message: "Cannot parse form body"}
	errNoDeclarative       = &Error{Status: http.StatusBadRequest, Message: "expected a declarative configuration"}
	errConfigNeedsDBLess   = &Error{Status: http.StatusBadRequest, Message: "this endpoint is only available when datakit is configured to not use a database"}
	errLoading             = &Error{Status: http.StatusTooManyRequests, Message: "Currently loading previous configuration", Header: http.Header{"Retry-After": {"1"}}}
	errUnsupportedMedia    = &Error{Status: http.StatusUnsupportedMediaType}
	errUnexpected          = &Error{Status: http.StatusInternalServerError, Message: "An unexpected error occurred"}
	errDatabaseUnreachable = &Error{Status: http.StatusServiceUnavailable, Message: "database unreachable"}
)

// unsupported is the 405 code 12 answer to an entity write without a
// database (§4.10).
func unsupported(method, entity string) *Error {
	verb := map[string]string{
		http.MethodPost:   "create",
		http.MethodPut:    "create or update",
		http.MethodPatch:  "update",
		http.MethodDelete: "remove",
	}[method]
	return &Error{Status: http.StatusMethodNotAllowed, Code: codeOperationUnsupported,
		Message: fmt.Sprintf("cannot %s '%s' entities when not using a database", verb, entity)}
}

// invalidOption is a 400 code 11 for one query option (§4.6).
func invalidOption(name, msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: codeInvalidOptions,
		Message: fmt.Sprintf("invalid option (%s: %s)", name, msg), Options: map[string]string{name: msg}}
}

// invalidSize is a 400 code 9 (§4.5).
func invalidSize(msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: codeInvalidSize, Message: msg}
}

// invalidOffset is a 400 code 7 (§4.5).
func invalidOffset(offset, reason string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: codeInvalidOffset,
		Message: fmt.Sprintf("'%s' is not a valid offset: %s", offset, reason)}
}

// schemaViolation is a 400 code 2 from a violation tree.
func schemaViolation(fe *config.FieldErrors) *Error {
	return &Error{Status: http.StatusBadRequest, Code: codeSchemaViolation, Message: fe.Error(), Fields: fe}
}

// toError maps any error a handler returns to its response. It is the only
// place that decides HTTP statuses for errors.
func (a *api) toError(r *http.Request, err error) (*Error, *[]config.FlattenedError) {
	var (
		ae  *Error
		fe  *config.FieldErrors
		de  *config.DeclarativeError
		mbe *http.MaxBytesError
	)
	switch {
	case errors.As(err, &ae):
		return ae, nil
	case errors.As(err, &mbe), errors.Is(err, config.ErrDocumentTooLarge):
		return errTooLarge, nil
	case errors.As(err, &de):
		e := &Error{Status: http.StatusBadRequest, Code: codeInvalidDeclarative, Message: de.Error(), Fields: de.Fields}
		if de.Parse != nil || de.Fields == nil {
			e.Fields = map[string]any{}
		}
		if !queryFlag(r, "flatten_errors") {
			return e, nil
		}
		flat := de.Flattened
		if flat == nil {
			flat = []config.FlattenedError{}
		}
		return e, &flat
	case errors.As(err, &fe):
		return schemaViolation(fe), nil
	}
	if e := a.storeError(err); e != nil {
		return e, nil
	}
	a.opts.Logger.Error("admin request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	return errUnexpected, nil
}

// fail writes err's response.
func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) {
	e, flat := a.toError(r, err)
	for k, v := range e.Header {
		w.Header()[k] = v
	}
	if e.Status == http.StatusUnsupportedMediaType {
		w.WriteHeader(e.Status)
		return
	}
	body := errorBody{Code: e.Code, Message: e.Message, Fields: e.Fields, Options: e.Options, Flattened: flat}
	if e.Code != 0 {
		body.Name = codeNames[e.Code]
	}
	writeJSON(w, r, e.Status, body)
}

// queryFlag reads a boolean query option: 1, true, on, yes (§4.8).
func queryFlag(r *http.Request, name string) bool {
	switch strings.ToLower(r.URL.Query().Get(name)) {
	case "1", "true", "on", "yes":
		return true
	}
	return false
}

// writeJSON writes v as the response; HEAD gets the headers only.
func writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // next links keep their '&'
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"message":"An unexpected error occurred"}`)
	}
	writeRaw(w, r, status, bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

// writeRaw writes a JSON body already encoded.
func writeRaw(w http.ResponseWriter, r *http.Request, status int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b)
	}
}

// storeError maps the datastore's errors (§4.7, §6.8); nil when err is
// not one.
func (a *api) storeError(err error) *Error {
	var (
		ue *store.UniqueError
		pk *store.PrimaryKeyError
		fk *store.ForeignKeyError
		ur *store.UnresolvedError
		re *store.ReferencedError
		oe *store.OffsetError
		se *store.SizeError
	)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return errNotFound
	case errors.Is(err, store.ErrUnavailable):
		return errDatabaseUnreachable
	case errors.Is(err, store.ErrDiskFull):
		return &Error{Status: http.StatusServiceUnavailable, Message: store.ErrDiskFull.Error()}
	case errors.Is(err, store.ErrReadOnly):
		return &Error{Status: http.StatusServiceUnavailable, Message: store.ErrReadOnly.Error()}
	case errors.As(err, &ue):
		return &Error{Status: http.StatusConflict, Code: codeUniqueViolation, Message: ue.Error(), Fields: ue.Fields}
	case errors.As(err, &pk):
		return &Error{Status: http.StatusConflict, Code: codePrimaryKeyViolation, Message: pk.Error(),
			Fields: map[string]any{"id": pk.ID}}
	case errors.As(err, &fk):
		return &Error{Status: http.StatusBadRequest, Code: codeForeignKeyViolation, Message: fk.Error(),
			Fields: map[string]any{fk.Field: map[string]any{"id": fk.ID}}}
	case errors.As(err, &ur):
		return &Error{Status: http.StatusBadRequest, Code: codeForeignKeyUnresolved, Message: ur.Error(),
			Fields: map[string]any{ur.Field: map[string]any{ur.KeyField: ur.Value}}}
	case errors.As(err, &re):
		return &Error{Status: http.StatusBadRequest, Code: codeForeignKeyViolation, Message: re.Error(),
			Fields: map[string]any{"@referenced_by": string(re.By)}}
	case errors.As(err, &oe):
		return invalidOffset(oe.Offset, oe.Reason)
	case errors.As(err, &se):
		return invalidSize(se.Error())
	}
	return nil
}

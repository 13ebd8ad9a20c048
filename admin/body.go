package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"

	"github.com/datakit-gateway/datakit/gateway/config"
)

// maxMultipartMemory bounds multipart parsing; the body is already capped
// by admin_max_body_size.
const maxMultipartMemory = 32 << 20

// bodyOf returns the body protect read (empty for GET, DELETE).
func bodyOf(r *http.Request) *requestBody {
	if b, ok := r.Context().Value(bodyKey{}).(*requestBody); ok {
		return b
	}
	return &requestBody{}
}

// decodeBody parses a write's body into plain values (§4.2): JSON as
// encoding/json decodes it, forms through decodeForm. An empty body is {}.
func decodeBody(b *requestBody) (map[string]any, error) {
	if len(b.data) == 0 {
		return map[string]any{}, nil
	}
	switch b.mediaType {
	case "application/json":
		m, err := jsonObject(b.data)
		if err != nil || m == nil {
			return nil, errBadJSON
		}
		return m, nil
	case "application/x-www-form-urlencoded", "multipart/form-data":
		vals, err := formValues(b)
		if err != nil {
			return nil, errBadForm
		}
		m, err := decodeForm(vals)
		if err != nil {
			return nil, errBadForm
		}
		return m, nil
	}
	return nil, errUnsupportedMedia
}

// formValues reads the fields of a urlencoded or multipart body; a
// multipart file part counts as a field holding the file's content
// (`curl -F config=@kong.yml`).
func formValues(b *requestBody) (url.Values, error) {
	if b.mediaType == "application/x-www-form-urlencoded" {
		return url.ParseQuery(string(b.data))
	}
	boundary := b.params["boundary"]
	if boundary == "" {
		return nil, errors.New("multipart body without boundary")
	}
	mr := multipart.NewReader(bytes.NewReader(b.data), boundary)
	vals := url.Values{}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return vals, nil
		}
		if err != nil {
			return nil, err
		}
		name := p.FormName()
		data, err := io.ReadAll(io.LimitReader(p, maxMultipartMemory))
		_ = p.Close()
		if err != nil {
			return nil, err
		}
		if name != "" {
			vals.Add(name, string(data))
		}
	}
}

// decodeEntity parses an entity body; form values are coerced to the
// collection's field types, JSON keeps its own.
func (a *api) decodeEntity(r *http.Request, c *collection) (map[string]any, error) {
	b := bodyOf(r)
	in, err := decodeBody(b)
	if err != nil {
		return nil, err
	}
	if isForm(b.mediaType) {
		in = coerce(c, in, a.schemas())
	}
	return in, nil
}

// jsonObject decodes a JSON document that must be an object: nil without an
// error when it is valid JSON of another kind, errBadJSON when it is not JSON.
// Duplicate keys, invalid UTF-8 and hostile nesting are errBadJSON too
// (hardening §2.10): encoding/json would keep the last duplicate silently,
// so what the Admin API stored could differ from what a reviewer read.
func jsonObject(data []byte) (map[string]any, error) {
	if !json.Valid(data) {
		return nil, errBadJSON
	}
	v, err := config.ParseDocument(data, config.DefaultLimits())
	if err != nil {
		return nil, errBadJSON
	}
	m, _ := v.(map[string]any)
	return m, nil
}

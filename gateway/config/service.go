package config

import (
	"net/url"
	"strconv"
	"strings"
)

// Service is an upstream API (§3.2). JSON field order is alphabetical, every
// field present, unset ones null (§3.1).
type Service struct {
	// CACertificates must be null: CA-certificate entities are not provided.
	CACertificates    []string    `json:"ca_certificates"`
	ClientCertificate *ForeignKey `json:"client_certificate"`
	ConnectTimeout    int         `json:"connect_timeout"`
	CreatedAt         int64       `json:"created_at"`
	// Enabled false drops the Service's Routes from the router.
	Enabled bool    `json:"enabled"`
	Host    string  `json:"host"`
	ID      string  `json:"id"`
	Name    *string `json:"name"`
	// Path nil means "/" when building the upstream path.
	Path        *string  `json:"path"`
	Port        int      `json:"port"`
	Protocol    string   `json:"protocol"`
	ReadTimeout int      `json:"read_timeout"`
	Retries     int      `json:"retries"`
	Tags        []string `json:"tags"`
	// TLSVerify nil defers to the upstream_tls_verify setting.
	TLSVerify      *bool `json:"tls_verify"`
	TLSVerifyDepth *int  `json:"tls_verify_depth"`
	UpdatedAt      int64 `json:"updated_at"`
	WriteTimeout   int   `json:"write_timeout"`
}

const maxTimeout = 2147483646

// DecodeService decodes, defaults and validates a Service from plain values,
// `url` shorthand included. References stay unresolved (ForeignKey.Key).
func DecodeService(in map[string]any) (Service, *FieldErrors) {
	s := Service{
		Protocol: "http", Port: 80, Retries: 5, Enabled: true,
		ConnectTimeout: 60000, WriteTimeout: 60000, ReadTimeout: 60000,
	}
	errs := &FieldErrors{}
	r := newReader(in, errs)
	r.common(&s.ID, &s.CreatedAt, &s.Tags)
	r.timestamp("updated_at", &s.UpdatedAt)
	r.name("name", &s.Name)

	// The url shorthand fills protocol, host, port and path; fields given
	// explicitly are read afterwards and win.
	var raw string
	if r.str("url", &raw) {
		applyURL(&s, raw, errs.Field("url"))
	}
	r.str("protocol", &s.Protocol)
	r.str("host", &s.Host)
	r.integer("port", &s.Port, 0, 65535)
	if r.present("path") {
		s.Path = nil
	}
	r.strPtr("path", &s.Path)
	r.integer("retries", &s.Retries, 0, 32767)
	r.integer("connect_timeout", &s.ConnectTimeout, 1, maxTimeout)
	r.integer("write_timeout", &s.WriteTimeout, 1, maxTimeout)
	r.integer("read_timeout", &s.ReadTimeout, 1, maxTimeout)
	r.foreign("client_certificate", "id", &s.ClientCertificate)
	r.boolPtr("tls_verify", &s.TLSVerify)
	r.intPtr("tls_verify_depth", &s.TLSVerifyDepth, 0, 64)
	r.null("ca_certificates")
	r.boolean("enabled", &s.Enabled)
	r.done()

	s.validate(errs)
	return s, errs
}

// applyURL parses the shorthand. A missing scheme means https on port 443,
// else http; the port defaults by scheme; a missing path is null.
func applyURL(s *Service, raw string, errs *FieldErrors) {
	withScheme := raw
	if !strings.Contains(raw, "://") {
		withScheme = "//" + raw
	}
	u, err := url.Parse(withScheme)
	if err != nil {
		errs.Add("invalid url: " + raw)
		return
	}
	port := 0
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n > 65535 {
			errs.Add("invalid url: " + raw)
			return
		}
		port = n
	}
	switch {
	case u.Scheme != "":
		s.Protocol = strings.ToLower(u.Scheme)
	case port == 443:
		s.Protocol = "https"
	default:
		s.Protocol = "http"
	}
	switch {
	case port != 0:
		s.Port = port
	case s.Protocol == "https":
		s.Port = 443
	default:
		s.Port = 80
	}
	s.Host = u.Hostname()
	s.Path = nil
	if p := u.EscapedPath(); p != "" {
		s.Path = &p
	}
}

func (s *Service) validate(errs *FieldErrors) {
	if msg := oneOf("http", "https")(s.Protocol); msg != "" && errs.children["protocol"].Empty() {
		errs.Field("protocol").Add(msg)
	}
	switch {
	case s.Host == "" && !errs.anyField("host", "url"):
		errs.Field("host").Add("required field missing")
	case s.Host != "":
		if msg := checkHost(s.Host); msg != "" {
			errs.Field("host").Add(msg)
		}
	}
	if s.Path != nil {
		if msg := checkServicePath(*s.Path); msg != "" {
			errs.Field("path").Add(msg)
		}
	}
	if s.Protocol != "https" {
		if s.ClientCertificate != nil {
			errs.Field("client_certificate").Add("value must be null")
		}
		if s.TLSVerify != nil {
			errs.Field("tls_verify").Add("value must be null")
		}
		if s.TLSVerifyDepth != nil {
			errs.Field("tls_verify_depth").Add("value must be null")
		}
	}
}

package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math"
)

// Target is an address an Upstream balances over (§3.7). Its timestamps are
// Unix seconds with millisecond fractions, as Kong's.
type Target struct {
	CreatedAt float64  `json:"created_at"`
	ID        string   `json:"id"`
	Tags      []string `json:"tags"`
	// Target is host:port, the port defaulted to 8000 and stored.
	Target    string      `json:"target"`
	UpdatedAt float64     `json:"updated_at"`
	Upstream  *ForeignKey `json:"upstream"`
	// Weight 0 takes the Target out of rotation.
	Weight int `json:"weight"`
}

// DecodeTarget decodes, defaults and validates a Target.
func DecodeTarget(in map[string]any) (Target, *FieldErrors) {
	t := Target{Weight: 100}
	errs := &FieldErrors{}
	r := newReader(in, errs)
	r.id(&t.ID)
	r.number("created_at", &t.CreatedAt, 0, math.MaxFloat64)
	r.number("updated_at", &t.UpdatedAt, 0, math.MaxFloat64)
	r.strings("tags", &t.Tags, true, checkTag)
	var raw string
	r.required("target", &raw)
	if raw != "" {
		if n, ok := normalizeTarget(raw); ok {
			t.Target = n
		} else {
			errs.Field("target").Addf("Invalid target ('%s'); not a valid hostname or ip address", raw)
		}
	}
	r.integer("weight", &t.Weight, 0, 65535)
	r.foreign("upstream", "name", &t.Upstream)
	r.done()
	if t.Upstream == nil && errs.children["upstream"].Empty() {
		errs.Field("upstream").Add("required field missing")
	}
	return t, errs
}

// Certificate is a PEM certificate and key for the proxy's TLS listeners
// (§3.8), optionally with an alternative pair of the other key type.
type Certificate struct {
	Cert      string  `json:"cert"`
	CertAlt   *string `json:"cert_alt"`
	CreatedAt int64   `json:"created_at"`
	ID        string  `json:"id"`
	Key       string  `json:"key"`
	KeyAlt    *string `json:"key_alt"`
	// SNIs on output are the names of the Certificate's SNI entities,
	// sorted, [] when none; on input they name SNIs to create.
	SNIs      []string `json:"snis"`
	Tags      []string `json:"tags"`
	UpdatedAt int64    `json:"updated_at"`
}

// DecodeCertificate decodes and validates a Certificate: PEM blocks that
// parse, keys that match, an alternative pair of a different key type.
func DecodeCertificate(in map[string]any) (Certificate, *FieldErrors) {
	c := Certificate{}
	errs := &FieldErrors{}
	r := newReader(in, errs)
	r.common(&c.ID, &c.CreatedAt, &c.Tags)
	r.timestamp("updated_at", &c.UpdatedAt)
	r.required("cert", &c.Cert)
	r.required("key", &c.Key)
	r.strPtr("cert_alt", &c.CertAlt)
	r.strPtr("key_alt", &c.KeyAlt)
	if r.strings("snis", &c.SNIs, false, checkSNIName) {
		seen := map[string]bool{}
		for _, n := range c.SNIs {
			if seen[n] {
				errs.Field("snis").Addf("%s is duplicated", n)
			}
			seen[n] = true
		}
	}
	r.done()

	main := checkPair(c.Cert, c.Key, "cert", "key", "certificate does not match key", errs)
	if (c.CertAlt == nil) != (c.KeyAlt == nil) && !errs.anyField("cert_alt", "key_alt") {
		errs.AddEntity("all or none of these fields must be set: 'cert_alt', 'key_alt'")
		return c, errs
	}
	if c.CertAlt != nil && c.KeyAlt != nil {
		alt := checkPair(*c.CertAlt, *c.KeyAlt, "cert_alt", "key_alt", "alternative certificate does not match key", errs)
		if main != nil && alt != nil && main.PublicKeyAlgorithm == alt.PublicKeyAlgorithm {
			errs.AddEntity("certificate and alternative certificate need to have different type (e.g. RSA and ECDSA), the provided certificates were both of the same type")
		}
	}
	return c, errs
}

// checkPair parses a certificate and key and checks that they match; it
// returns the certificate when all is well.
func checkPair(certPEM, keyPEM, certField, keyField, mismatch string, errs *FieldErrors) *x509.Certificate {
	if certPEM == "" || keyPEM == "" {
		return nil
	}
	cert, err := parseCert(certPEM)
	if err != nil {
		errs.Field(certField).Add("invalid certificate: " + err.Error())
	}
	if err := parseKey(keyPEM); err != nil {
		errs.Field(keyField).Add("invalid key: " + err.Error())
	}
	if errs.anyField(certField, keyField) {
		return nil
	}
	if _, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM)); err != nil {
		errs.AddEntity(mismatch)
		return nil
	}
	return cert
}

func parseCert(s string) (*x509.Certificate, error) {
	b, _ := pem.Decode([]byte(s))
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("expected a PEM CERTIFICATE block")
	}
	return x509.ParseCertificate(b.Bytes)
}

func parseKey(s string) error {
	b, _ := pem.Decode([]byte(s))
	if b == nil {
		return errors.New("expected a PEM private key block")
	}
	if _, err := x509.ParsePKCS8PrivateKey(b.Bytes); err == nil {
		return nil
	}
	if _, err := x509.ParsePKCS1PrivateKey(b.Bytes); err == nil {
		return nil
	}
	if _, err := x509.ParseECPrivateKey(b.Bytes); err == nil {
		return nil
	}
	return fmt.Errorf("unsupported private key in %s block", b.Type)
}

// SNI names a server name served with a Certificate (§3.8).
type SNI struct {
	Certificate *ForeignKey `json:"certificate"`
	CreatedAt   int64       `json:"created_at"`
	ID          string      `json:"id"`
	// Name is a host with at most one '*' as leftmost or rightmost label.
	Name      string   `json:"name"`
	Tags      []string `json:"tags"`
	UpdatedAt int64    `json:"updated_at"`
}

// DecodeSNI decodes and validates an SNI.
func DecodeSNI(in map[string]any) (SNI, *FieldErrors) {
	var s SNI
	errs := &FieldErrors{}
	r := newReader(in, errs)
	r.common(&s.ID, &s.CreatedAt, &s.Tags)
	r.timestamp("updated_at", &s.UpdatedAt)
	r.required("name", &s.Name)
	if s.Name != "" {
		if msg := checkSNIName(s.Name); msg != "" {
			errs.Field("name").Add(msg)
		}
	}
	r.foreign("certificate", "id", &s.Certificate)
	r.done()
	if s.Certificate == nil && errs.children["certificate"].Empty() {
		errs.Field("certificate").Add("required field missing")
	}
	return s, errs
}

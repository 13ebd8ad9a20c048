package gateway

import (
	"crypto/ecdsa"
	"crypto/tls"
	"strings"

	"github.com/datakit-gateway/datakit/gateway/config"
)

// certPair is a parsed Certificate entity: its main pair and, with cert_alt,
// the alternative pair of the other key type.
type certPair struct {
	main, alt *tls.Certificate
	// source is the PEM text the pairs were parsed from, so that an
	// unchanged Certificate is not parsed again on the next swap.
	source string
}

// certIndex is the snapshot's TLS certificate index (gateway.md §3.8):
// Certificates by id (client certificates of Services and Upstreams) and by
// SNI name, wildcard names stored as written.
type certIndex struct {
	byID  map[string]*certPair
	bySNI map[string]*certPair
}

// buildCerts parses every Certificate, reusing the previous snapshot's
// parse of an unchanged one. Certificates were validated when stored, so a
// pair that still fails to parse is left out rather than failing the build.
func (s *Snapshot) buildCerts(e *config.Entities, prev *Snapshot) {
	idx := certIndex{byID: make(map[string]*certPair, len(e.Certificates)), bySNI: make(map[string]*certPair, len(e.SNIs))}
	for i := range e.Certificates {
		c := &e.Certificates[i]
		source := c.Cert + c.Key + deref(c.CertAlt) + deref(c.KeyAlt)
		if prev != nil {
			if p := prev.certs.byID[c.ID]; p != nil && p.source == source {
				idx.byID[c.ID] = p
				continue
			}
		}
		main, err := tls.X509KeyPair([]byte(c.Cert), []byte(c.Key))
		if err != nil {
			continue
		}
		p := &certPair{main: &main, source: source}
		if c.CertAlt != nil && c.KeyAlt != nil {
			if alt, err := tls.X509KeyPair([]byte(*c.CertAlt), []byte(*c.KeyAlt)); err == nil {
				p.alt = &alt
			}
		}
		idx.byID[c.ID] = p
	}
	for i := range e.SNIs {
		sni := &e.SNIs[i]
		if sni.Certificate == nil {
			continue
		}
		if p := idx.byID[sni.Certificate.ID]; p != nil {
			idx.bySNI[strings.ToLower(sni.Name)] = p
		}
	}
	s.certs = idx
}

// lookup finds the pair for a TLS server name: exact, then `*.` with the
// first label replaced, then the last label replaced by `*` (Kong's order).
func (idx certIndex) lookup(serverName string) *certPair {
	name := strings.TrimSuffix(strings.ToLower(serverName), ".")
	if name == "" || len(idx.bySNI) == 0 {
		return nil
	}
	if p := idx.bySNI[name]; p != nil {
		return p
	}
	if i := strings.IndexByte(name, '.'); i >= 0 {
		if p := idx.bySNI["*"+name[i:]]; p != nil {
			return p
		}
	}
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		if p := idx.bySNI[name[:i+1]+"*"]; p != nil {
			return p
		}
	}
	return nil
}

// serve picks the pair the client supports, ECDSA first.
func (p *certPair) serve(hello *tls.ClientHelloInfo) *tls.Certificate {
	if p.alt == nil {
		return p.main
	}
	first, second := p.main, p.alt
	if _, ok := p.alt.PrivateKey.(*ecdsa.PrivateKey); ok {
		first, second = p.alt, p.main
	}
	if hello.SupportsCertificate(first) == nil {
		return first
	}
	return second
}

// HasCertificates reports whether the active snapshot holds a Certificate
// that an SNI serves: what a pending TLS proxy listener waits for.
func (g *Gateway) HasCertificates() bool {
	snap := g.Snapshot()
	return snap != nil && len(snap.certs.bySNI) > 0
}

// ProxyTLSConfig is the configuration of a TLS proxy listener: the
// certificate of the active snapshot's SNIs, else fallback (ssl_cert, may
// be nil); with neither, the handshake ends with unrecognized_name.
func (g *Gateway) ProxyTLSConfig(fallback *tls.Certificate, h2 bool) *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			if snap := g.Snapshot(); snap != nil {
				if p := snap.certs.lookup(hello.ServerName); p != nil {
					return p.serve(hello), nil
				}
			}
			return fallback, nil
		}}
	if h2 {
		cfg.NextProtos = []string{"h2", "http/1.1"}
	}
	return cfg
}

// clientCertificate is the pair a Service presents upstream: its own
// client_certificate, else its Upstream's (gateway.md §8.9).
func (s *Snapshot) clientCertificate(svc *config.Service) *tls.Certificate {
	ref := svc.ClientCertificate
	if ref == nil {
		if u := s.upstream(svc.Host); u != nil {
			ref = u.cfg.ClientCertificate
		}
	}
	if ref == nil {
		return nil
	}
	if p := s.certs.byID[ref.ID]; p != nil {
		return p.main
	}
	return nil
}

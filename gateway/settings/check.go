package settings

import "fmt"

// check applies the start-up rules of gateway.md §2.2 that involve more than
// one setting. Each error is one line; the two rules the spec words are
// reported in its words.
func (s *Settings) check() []error {
	var errs []error

	if !s.AdminToken.IsSet() && !s.AdminAllowRemoteWithoutToken {
		for _, l := range s.AdminListen {
			if !l.IsLoopback() {
				errs = append(errs, fmt.Errorf("admin_listen %s is not a loopback address: set admin_token, "+
					"or admin_allow_remote_without_token = on to accept the risk", l.Address()))
			}
		}
	}

	if s.Database != "off" {
		for _, d := range []struct{ name, value string }{
			{"declarative_config", s.DeclarativeConfig},
			{"declarative_config_string", s.DeclarativeConfigString},
		} {
			if d.value != "" {
				errs = append(errs, fmt.Errorf("%s requires database = off; "+
					"use 'datakit config import' to load a file into the database", d.name))
			}
		}
	}

	errs = append(errs, pair("ssl_cert", s.SSLCert, "ssl_cert_key", s.SSLCertKey)...)
	errs = append(errs, pair("admin_ssl_cert", s.AdminSSLCert, "admin_ssl_cert_key", s.AdminSSLCertKey)...)
	if s.AdminSSLCert == "" || s.AdminSSLCertKey == "" {
		for _, l := range s.AdminListen {
			if l.SSL {
				errs = append(errs, fmt.Errorf("admin_listen %s requires admin_ssl_cert and admin_ssl_cert_key", l))
			}
		}
	}

	// Two listeners on one address would fail at bind time, after the
	// datastore was opened; say so now. Port 0 is always a fresh port.
	type owner struct {
		setting string
		listen  Listen
	}
	bound := make(map[string]owner)
	for _, group := range []struct {
		name    string
		listens []Listen
	}{
		{"proxy_listen", s.ProxyListen},
		{"admin_listen", s.AdminListen},
		{"status_listen", s.StatusListen},
	} {
		for _, l := range group.listens {
			if l.Port == 0 {
				continue
			}
			if prev, dup := bound[l.Address()]; dup {
				errs = append(errs, fmt.Errorf("%s %s: address already used by %s %s", group.name, l.Address(), prev.setting, prev.listen))
				continue
			}
			bound[l.Address()] = owner{group.name, l}
		}
	}
	return errs
}

// pair reports a certificate without its key or a key without its certificate.
func pair(certName, cert, keyName, key string) []error {
	switch {
	case cert != "" && key == "":
		return []error{fmt.Errorf("%s requires %s", certName, keyName)}
	case cert == "" && key != "":
		return []error{fmt.Errorf("%s requires %s", keyName, certName)}
	}
	return nil
}

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/datakit-gateway/datakit/gateway/settings"
)

// Helpers shared by the database tests of this package: a fresh PostgreSQL
// database per test, in-process nodes stopped by context, small HTTP calls.

// testClient bounds every request of these tests.
var testClient = &http.Client{Timeout: 10 * time.Second}

// pgSuperuserConn connects as postgres or root (trust auth) to the existing
// database "test"; unreachable PostgreSQL skips the test, or fails it under
// DATAKIT_TEST_REQUIRE_SERVICES=1.
func pgSuperuserConn(t *testing.T) (user string, conn *pgx.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []string
	for _, u := range []string{"postgres", "root"} {
		c, err := pgx.Connect(ctx, fmt.Sprintf("host=127.0.0.1 port=5432 user=%s dbname=test sslmode=disable connect_timeout=3", u))
		if err == nil {
			return u, c
		}
		errs = append(errs, err.Error())
	}
	if os.Getenv("DATAKIT_TEST_REQUIRE_SERVICES") == "1" {
		t.Fatalf("PostgreSQL at 127.0.0.1:5432 required (DATAKIT_TEST_REQUIRE_SERVICES=1): %s", strings.Join(errs, "; "))
	}
	t.Skipf("PostgreSQL at 127.0.0.1:5432 unreachable, skipping (set DATAKIT_TEST_REQUIRE_SERVICES=1 to fail): %s", strings.Join(errs, "; "))
	return "", nil
}

func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// pgTestDB is a database created for one test and dropped after it.
type pgTestDB struct {
	// Super is a superuser that can connect to Name; Owner owns it (the
	// superuser, or the role made by newPGDatabaseWithRole).
	Super, Owner, Name string
	admin              *pgx.Conn // superuser connection to "test"
}

// exec runs a statement as the superuser, failing the test on error.
func (d *pgTestDB) exec(t *testing.T, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := d.admin.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// settings are the --set overrides that point datakit at the database as
// its owner.
func (d *pgTestDB) settings() []string {
	return []string{"database=postgres", "pg_host=127.0.0.1", "pg_port=5432", "pg_user=" + d.Owner, "pg_database=" + d.Name}
}

// newPGDatabase creates a fresh database owned by the superuser.
func newPGDatabase(t *testing.T) *pgTestDB {
	return createPGDatabase(t, false)
}

// newPGDatabaseWithRole creates a fresh login role (not a superuser) and a
// database it owns, so a test can cut that role off without touching any
// other user or database; both are dropped after the test.
func newPGDatabaseWithRole(t *testing.T) *pgTestDB {
	return createPGDatabase(t, true)
}

func createPGDatabase(t *testing.T, withRole bool) *pgTestDB {
	t.Helper()
	super, conn := pgSuperuserConn(t)
	suffix := randomSuffix()
	d := &pgTestDB{Super: super, Owner: super, Name: "datakit_cmd_test_" + suffix, admin: conn}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// WITH (FORCE) ends sessions a killed process may have left behind.
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+d.Name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", d.Name, err)
		}
		if d.Owner != super {
			if _, err := conn.Exec(ctx, "DROP ROLE IF EXISTS "+d.Owner); err != nil {
				t.Errorf("drop role %s: %v", d.Owner, err)
			}
		}
		conn.Close(ctx) //nolint:errcheck // test cleanup
	})
	if withRole {
		role := "datakit_cmd_role_" + suffix
		d.exec(t, "CREATE ROLE "+role+" LOGIN")
		d.Owner = role
	}
	d.exec(t, "CREATE DATABASE "+d.Name+" OWNER "+d.Owner)
	return d
}

// testNode is a node running in this process until its test ends.
type testNode struct {
	proxy, status, admin string // base URLs
	stop                 func()
}

// startTestNode runs a node with these settings (listeners on 127.0.0.1:0
// are added) and stops it through its context when the test ends, so
// several nodes can run side by side.
func startTestNode(t *testing.T, overrides ...string) *testNode {
	t.Helper()
	all := append([]string{"proxy_listen=127.0.0.1:0", "status_listen=127.0.0.1:0", "admin_listen=127.0.0.1:0",
		"log_level=error", "drain_timeout=2s"}, overrides...)
	st, err := settings.Load(settings.LoadOptions{SearchPaths: []string{}, Overrides: all})
	if err != nil {
		t.Fatal(err)
	}
	n, err := newNode(st, newLogger(st, io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	bound := make(chan []string, 1)
	done := make(chan int, 1)
	go func() { done <- n.run(ctx, func(a []string) { bound <- a }) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("node did not stop within 10 s")
		}
	}
	t.Cleanup(stop)
	select {
	case a := <-bound:
		return &testNode{proxy: "http://" + a[0], status: "http://" + a[1], admin: "http://" + a[2], stop: stop}
	case code := <-done:
		t.Fatalf("node exited with %d before it was ready", code)
	}
	return nil
}

// call sends a JSON request (body nil: none) and returns the status, the
// response headers and the body.
func call(method, url string, body any) (int, http.Header, []byte, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		return 0, nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := testClient.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b, err
}

// mustCall is call that expects the status want.
func mustCall(t *testing.T, want int, method, url string, body any) (http.Header, []byte) {
	t.Helper()
	code, h, b, err := call(method, url, body)
	if err != nil || code != want {
		t.Fatalf("%s %s = %d %s (%v), want %d", method, url, code, b, err, want)
	}
	return h, b
}

// adminStatus is the part of the Admin API's GET /status these tests read.
type adminStatus struct {
	Database *struct {
		Reachable bool `json:"reachable"`
	} `json:"database"`
	Datakit struct {
		Revision *int64  `json:"configuration_revision"`
		Error    *string `json:"configuration_error"`
	} `json:"datakit"`
}

func getAdminStatus(adminURL string) (adminStatus, error) {
	var st adminStatus
	code, _, b, err := call("GET", adminURL+"/status", nil)
	if err != nil {
		return st, err
	}
	if code != 200 {
		return st, fmt.Errorf("GET /status = %d %s", code, b)
	}
	err = json.Unmarshal(b, &st)
	return st, err
}

// revisionOf reads a node's active configuration revision (-1 when unknown).
func revisionOf(adminURL string) int64 {
	st, err := getAdminStatus(adminURL)
	if err != nil || st.Datakit.Revision == nil {
		return -1
	}
	return *st.Datakit.Revision
}

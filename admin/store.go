package admin

import "net/http"

// The DB modes' handlers: until the datastore is wired, every call is 503.

func (a *api) noStore(w http.ResponseWriter, r *http.Request) { a.fail(w, r, errDatabaseUnreachable) }

func (a *api) storeList(scope) http.HandlerFunc               { return a.noStore }
func (a *api) storeGet(scope) http.HandlerFunc                { return a.noStore }
func (a *api) storeLink(*collection, string) http.HandlerFunc { return a.noStore }
func (a *api) storeWrite(scope, string) http.HandlerFunc      { return a.noStore }
func (a *api) storeLinkWrite(*collection, string, *collection) http.HandlerFunc {
	return a.noStore
}

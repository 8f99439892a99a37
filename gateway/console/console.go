// Package console is the operators' web console, served on the API port
// under /console/: login (agents with a role and a scope), the dashboard,
// search by business keys, the support work queue with its filters,
// anomaly pages with their history and actions, bulk actions, lot pages
// with their timeline and raw downloads, file pages and the referential
// versions and diffs. Server-rendered HTML, no script, nothing fetched
// from elsewhere; every POST carries the session's CSRF token; every
// handler checks the user's role and scope (an id out of scope is a 404,
// like a missing one). See docs/console.md.
package console

import (
	"log/slog"
	"net/http"

	"github.com/octgw/oct/gateway/store"
)

// Handler serves GET /: a redirect to the dashboard, which needs a login
// (the overview used to be public; it showed every tenant's figures). st
// and log are unused and kept for the callers.
func Handler(st store.Store, log *slog.Logger) http.Handler {
	_, _ = st, log
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secureHeaders(w)
		http.Redirect(w, r, "/console/dashboard", http.StatusSeeOther)
	})
}

package console

// RoutePatterns lists the patterns of the pages behind a login, for the
// route × role table test (every route must be in the table).
func RoutePatterns(c *Console) []string {
	var out []string
	for _, r := range c.routes() {
		out = append(out, r.pattern)
	}
	return out
}

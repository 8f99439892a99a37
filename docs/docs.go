// Package docs embeds the documents the gateway serves (the OpenAPI
// description of the HTTP API).
package docs

import _ "embed"

// OpenAPI is docs/openapi.yaml, served at GET /v1/openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte

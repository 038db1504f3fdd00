// Package templates embeds the catalog's data and the scaffolding that
// `orchestrator init` writes, so the binary is self-contained.
package templates

import "embed"

// FS holds catalog/ (image pins, resource defaults, config templates) and
// scaffold/ (files written by `orchestrator init`).
//
//go:embed catalog scaffold
var FS embed.FS

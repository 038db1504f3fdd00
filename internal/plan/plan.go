// Package plan is the difference between what the spec wants and what a
// target runs: data first, rendered as text for people (in the style of
// `tofu plan`) and as versioned JSON for machines, from the same values.
package plan

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
)

// FormatVersion is the version of the JSON form. Consumers should accept
// any 1.x and ignore fields they do not know.
const FormatVersion = "1.0"

// Action is what applying does to one resource.
type Action string

// Actions, in OpenTofu's words.
const (
	NoOp   Action = "no-op"
	Create Action = "create"
	Update Action = "update"
	Delete Action = "delete"
)

var symbols = map[Action]string{NoOp: " ", Create: "+", Update: "~", Delete: "-"}

// Change is one resource's planned change.
type Change struct {
	// Address is "<type>.<name>", e.g. "service.postgres".
	Address string `json:"address"`
	// Type is service, network or volume.
	Type string `json:"type"`
	// Name is the resource's name in the spec.
	Name    string   `json:"name"`
	Actions []Action `json:"actions"`
	// Reason says why, e.g. "image changed", "missing", "stopped by hand".
	Reason string `json:"reason,omitempty"`
	// Drift is true when the difference was made outside orchestrator.
	Drift bool `json:"drift,omitempty"`
	// Before and After are digests and small facts, never secret values.
	Before map[string]string `json:"before,omitempty"`
	After  map[string]string `json:"after,omitempty"`
	// Refused, when set, says why this change must not be applied (it
	// would lose or break data); a plan with a refused change is not
	// applied at all.
	Refused string `json:"refused,omitempty"`
	// Fix says what to do instead of a refused change.
	Fix string `json:"fix,omitempty"`
}

// Action returns the change's single action.
func (c Change) Action() Action {
	if len(c.Actions) == 0 {
		return NoOp
	}
	return c.Actions[0]
}

// Plan is every resource's change for one stack and target.
type Plan struct {
	FormatVersion   string   `json:"format_version"`
	Stack           string   `json:"stack"`
	Target          string   `json:"target"`
	ResourceChanges []Change `json:"resource_changes"`
	// UnavailableImages are the images the target can neither find nor
	// pull: applying this plan would stop before changing anything.
	UnavailableImages []UnavailableImage `json:"unavailable_images,omitempty"`
}

// Reasons an image cannot be pulled.
const (
	ImageUnreachable  = "unreachable"  // no answer from the registry (DNS, route, firewall, TLS)
	ImageNotFound     = "not-found"    // the registry has no such repository, tag or digest
	ImageUnauthorized = "unauthorized" // the registry wants credentials (or hides a missing repository behind 401)
	ImageError        = "error"        // anything else the registry or the engine said
)

// UnavailableImage is one image of the stack that is not on the target and
// cannot be pulled, with every service that uses it.
type UnavailableImage struct {
	Image    string   `json:"image"`
	Services []string `json:"services"`
	// Reason is one of the Image* constants.
	Reason string `json:"reason"`
	// Detail is the registry's or the engine's own message.
	Detail string `json:"detail"`
}

// New returns an empty plan.
func New(stack, target string) *Plan {
	return &Plan{FormatVersion: FormatVersion, Stack: stack, Target: target, ResourceChanges: []Change{}}
}

// Add appends a change.
func (p *Plan) Add(c Change) {
	if c.Address == "" {
		c.Address = c.Type + "." + c.Name
	}
	p.ResourceChanges = append(p.ResourceChanges, c)
}

// Sort orders changes by type (services, networks, volumes) and name.
func (p *Plan) Sort() {
	rank := map[string]int{"service": 0, "network": 1, "volume": 2}
	sort.SliceStable(p.ResourceChanges, func(i, j int) bool {
		a, b := p.ResourceChanges[i], p.ResourceChanges[j]
		if rank[a.Type] != rank[b.Type] {
			return rank[a.Type] < rank[b.Type]
		}
		return a.Name < b.Name
	})
}

// Counts returns how many resources each action touches.
func (p *Plan) Counts() map[Action]int {
	n := map[Action]int{}
	for _, c := range p.ResourceChanges {
		n[c.Action()]++
	}
	return n
}

// HasChanges reports whether applying would change anything.
func (p *Plan) HasChanges() bool {
	for _, c := range p.ResourceChanges {
		if c.Action() != NoOp {
			return true
		}
	}
	return false
}

// Refused returns the changes that must not be applied.
func (p *Plan) Refused() []Change {
	var out []Change
	for _, c := range p.ResourceChanges {
		if c.Refused != "" {
			out = append(out, c)
		}
	}
	return out
}

// String is the human form; tests use it as their oracle.
func (p *Plan) String() string {
	var b strings.Builder
	_ = p.WriteText(&b)
	return b.String()
}

// WriteText writes the plan the way `tofu plan` reads: one line per change
// with its symbol and reason, then a summary line.
func (p *Plan) WriteText(w io.Writer) error {
	var b strings.Builder
	if !p.HasChanges() {
		fmt.Fprintf(&b, "No changes. Stack %q on %s matches the spec.\n", p.Stack, p.Target)
		_, err := io.WriteString(w, b.String())
		return err
	}
	fmt.Fprintf(&b, "Stack %q on %s will be changed:\n\n", p.Stack, p.Target)
	for _, c := range p.ResourceChanges {
		if c.Action() == NoOp {
			continue
		}
		verb := map[Action]string{Create: "created", Update: "updated", Delete: "deleted"}[c.Action()]
		fmt.Fprintf(&b, "  %s %s will be %s", symbols[c.Action()], c.Address, verb)
		if c.Reason != "" {
			fmt.Fprintf(&b, ": %s", c.Reason)
		}
		if c.Drift {
			b.WriteString(" [drift]")
		}
		b.WriteByte('\n')
		if c.Refused != "" {
			fmt.Fprintf(&b, "    refused: %s\n", c.Refused)
			if c.Fix != "" {
				fmt.Fprintf(&b, "    fix: %s\n", strings.ReplaceAll(c.Fix, "\n", "\n      "))
			}
		}
	}
	n := p.Counts()
	fmt.Fprintf(&b, "\nPlan: %d to create, %d to update, %d to delete, %d unchanged.", n[Create], n[Update], n[Delete], n[NoOp])
	if r := len(p.Refused()); r > 0 {
		fmt.Fprintf(&b, " Refused: %d; nothing will be applied.", r)
	}
	b.WriteByte('\n')
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes the versioned machine form.
func (p *Plan) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(p)
}

package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/distribution/reference"

	"github.com/aipairpro/orchestrator/internal/plan"
)

// imageReasons are the plan.Image* reasons in people's words.
var imageReasons = map[string]string{
	plan.ImageUnreachable:  "registry not reachable",
	plan.ImageNotFound:     "not found",
	plan.ImageUnauthorized: "unauthorised (or no such repository: registries often answer both alike)",
	plan.ImageError:        "cannot be pulled",
}

// unavailableImagesError is up's check before anything changes: one error
// that names every image the engine can neither find nor pull, why, and
// what to do; nil when every image is there or pullable.
func unavailableImagesError(ctx context.Context, p *phase1) error {
	images, err := p.target.Images(ctx, p.project)
	if err != nil {
		return fmt.Errorf("check the stack's images: %w", err)
	}
	if len(images) == 0 {
		return nil
	}
	return fmt.Errorf("%s, so nothing was changed:\n%s", imagesHeadline(p, images), imagesDetail(images))
}

// warnUnavailableImages is plan's form of the same check: a warning on
// stderr, the images in the plan (JSON: unavailable_images).
func warnUnavailableImages(ctx context.Context, io *IOStreams, p *phase1, pl *plan.Plan) error {
	images, err := p.target.Images(ctx, p.project)
	if err != nil {
		return fmt.Errorf("check the stack's images: %w", err)
	}
	pl.UnavailableImages = images
	if len(images) > 0 {
		fmt.Fprintf(io.ErrOut, "Warning: %s; up will stop before changing anything:\n%s\n", imagesHeadline(p, images), imagesDetail(images))
	}
	return nil
}

func imagesHeadline(p *phase1, images []plan.UnavailableImage) string {
	return fmt.Sprintf("%s cannot be pulled by the engine at %s", plural(len(images), "image"), p.target.Host())
}

// imagesDetail lists each image once with its services, reason and the
// engine's message, then one fix per kind of failure, then the override
// that works whatever the failure.
func imagesDetail(images []plan.UnavailableImage) string {
	var b strings.Builder
	byReason := map[string][]string{} // reason -> registries
	var services []string
	for _, im := range images {
		word := "service"
		if len(im.Services) > 1 {
			word = "services"
		}
		fmt.Fprintf(&b, "  %s (%s %s): %s: %s\n", im.Image, word, strings.Join(im.Services, ", "), imageReasons[im.Reason], oneLine(im.Detail))
		if reg := registryOf(im.Image); !slices.Contains(byReason[im.Reason], reg) {
			byReason[im.Reason] = append(byReason[im.Reason], reg)
		}
		services = append(services, im.Services...)
	}
	if regs := byReason[plan.ImageUnreachable]; len(regs) > 0 {
		fmt.Fprintf(&b, "  fix: let the engine reach %s (network, DNS, proxy), give it a registry mirror (registry-mirrors in its daemon.json; Docker Hub images only), or copy the images onto it (docker save | docker load)\n", strings.Join(regs, ", "))
	}
	if regs := byReason[plan.ImageUnauthorized]; len(regs) > 0 {
		var logins []string
		for _, r := range regs {
			if r == "docker.io" {
				logins = append(logins, "`docker login` (Docker Hub)")
			} else {
				logins = append(logins, "`docker login "+r+"`")
			}
		}
		fmt.Fprintf(&b, "  fix: run %s on this machine (orchestrator hands the engine the docker CLI's credentials), or check the name\n", strings.Join(logins, " and "))
	}
	if len(byReason[plan.ImageNotFound]) > 0 {
		fmt.Fprintf(&b, "  fix: correct the name or tag (a component's tag is components.<name>.version, else the catalog's pin)\n")
	}
	slices.Sort(services)
	overrides := make([]string, 0, len(services))
	for _, s := range slices.Compact(services) {
		overrides = append(overrides, "overrides."+s+".image")
	}
	fmt.Fprintf(&b, "  fix: or point each service at an image the engine can get (a mirror's copy, your own registry): %s in the spec", strings.Join(overrides, ", "))
	return b.String()
}

// registryOf is the registry host of an image reference, docker.io for
// Docker Hub.
func registryOf(image string) string {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return image
	}
	return reference.Domain(named)
}

package bluesky

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	_ "image/gif" // decoders for the formats posts carry
	"image/jpeg"
	_ "image/png"
	"net/http"
	"strings"

	"github.com/bluesky-social/indigo/api/bsky"
	"github.com/rivo/uniseg"

	"github.com/fedi-ferry/ferry/atproto"
	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/sinks"
)

// minSide is the smallest width or height Shrink goes down to: below it an
// image says nothing, and it goes as a link instead.
const minSide = 64

// images uploads up to MaxImages of ms and returns them as embedded
// images; the rest, and those that cannot be attached, are returned as
// links (when they have a URL) for the text. A failure to attach one image
// never stops the post.
func (s *Sink) images(ctx context.Context, ms []post.Media) ([]*bsky.EmbedImages_Image, []string) {
	var out []*bsky.EmbedImages_Image
	var links []string
	for _, m := range ms {
		if len(out) == MaxImages || ctx.Err() != nil {
			links = sinks.AppendLink(links, m)
			continue
		}
		img, err := s.image(ctx, m)
		if err != nil {
			s.log.Warn("posting an image as a link: it cannot be attached", "media", m.Source(), "err", err)
			links = sinks.AppendLink(links, m)
			continue
		}
		out = append(out, img)
	}
	return out, links
}

// image reads, fits and uploads one image.
func (s *Sink) image(ctx context.Context, m post.Media) (*bsky.EmbedImages_Image, error) {
	if m.MIMEType != "" && !strings.HasPrefix(m.MIMEType, "image/") {
		return nil, fmt.Errorf("%s is not an image", m.MIMEType)
	}
	data, _, err := sinks.ReadMedia(ctx, s.fetch, m, s.maxMedia)
	if err != nil {
		return nil, err
	}
	mime := http.DetectContentType(data)
	if !strings.HasPrefix(mime, "image/") {
		return nil, fmt.Errorf("the file is %s, not an image", mime)
	}
	var w, h int
	if cfg, _, err := image.DecodeConfig(bytes.NewReader(data)); err == nil {
		w, h = cfg.Width, cfg.Height
	}
	limit := s.maxImage
	for {
		if len(data) > limit {
			small, sw, sh, err := Shrink(data, limit)
			if err != nil {
				return nil, err
			}
			data, mime, w, h = small, "image/jpeg", sw, sh
		}
		blob, err := s.c.UploadBlob(ctx, data, mime)
		if errors.Is(err, atproto.ErrBlobTooLarge) && limit > 64<<10 {
			// The PDS's own limit is lower than ours: try half the size.
			limit = min(limit, len(data)) / 2
			continue
		}
		if err != nil {
			return nil, err
		}
		img := &bsky.EmbedImages_Image{Alt: clipGraphemes(m.Description, MaxAltGraphemes), Image: blob}
		if w > 0 && h > 0 {
			img.AspectRatio = &bsky.EmbedDefs_AspectRatio{Width: int64(w), Height: int64(h)}
		}
		return img, nil
	}
}

// Shrink re-encodes the image data (JPEG, PNG or GIF; a GIF loses its
// animation) as a JPEG of at most limit bytes, halving its width and
// height until it fits, and returns it with its size. Transparent parts
// become white. An image that cannot be decoded, or does not fit even at
// 64 pixels, is an error.
func Shrink(data []byte, limit int) ([]byte, int, int, error) {
	src, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, 0, 0, fmt.Errorf("decode the image to make it smaller: %w", err)
	}
	img := flatten(src)
	for {
		b := img.Bounds()
		for _, q := range []int{85, 70, 50} {
			var buf bytes.Buffer
			if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: q}); err != nil {
				return nil, 0, 0, fmt.Errorf("encode JPEG: %w", err)
			}
			if buf.Len() <= limit {
				return buf.Bytes(), b.Dx(), b.Dy(), nil
			}
		}
		if b.Dx()/2 < minSide || b.Dy()/2 < minSide {
			return nil, 0, 0, fmt.Errorf("the image does not fit in %d bytes even at %dx%d", limit, b.Dx(), b.Dy())
		}
		img = half(img)
	}
}

// flatten draws src on white, as an RGBA image starting at (0, 0).
func flatten(src image.Image) *image.RGBA {
	b := src.Bounds()
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(dst, dst.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	draw.Draw(dst, dst.Bounds(), src, b.Min, draw.Over)
	return dst
}

// half scales img to half its width and height, each pixel the mean of
// the 2×2 pixels it replaces.
func half(img *image.RGBA) *image.RGBA {
	w, h := img.Bounds().Dx()/2, img.Bounds().Dy()/2
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			var sum [4]int
			for _, p := range [4][2]int{{0, 0}, {1, 0}, {0, 1}, {1, 1}} {
				i := img.PixOffset(2*x+p[0], 2*y+p[1])
				for c := 0; c < 4; c++ {
					sum[c] += int(img.Pix[i+c])
				}
			}
			j := dst.PixOffset(x, y)
			for c := 0; c < 4; c++ {
				dst.Pix[j+c] = uint8(sum[c] / 4)
			}
		}
	}
	return dst
}

// clipGraphemes returns s cut to at most n grapheme clusters.
func clipGraphemes(s string, n int) string {
	g := uniseg.NewGraphemes(s)
	end := 0
	for i := 0; i < n && g.Next(); i++ {
		_, end = g.Positions()
	}
	return s[:end]
}

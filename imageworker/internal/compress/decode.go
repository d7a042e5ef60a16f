package compress

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/jpeg"

	"github.com/davidbyttow/govips/v2/vips"
)

// decoded is a picture as a decoder hands it over, before the fit.
type decoded struct {
	img    image.Image
	orient orientation
	// shrink is the factor libjpeg reduced the picture by while decoding.
	shrink int
	// fitted says the picture already has the size of the fit, only its
	// orientation is left.
	fitted bool
}

// decode decodes data, whose header decodeConfig has checked, to a picture
// fitted into the box: libvips decodes it (a JPEG shrunk in the DCT domain
// while it is decoded, see shrinkFor) and reduces it with Lanczos-3. A JPEG
// libvips refuses is decoded again, whole, by the standard library's
// image/jpeg, which accepts files libjpeg-turbo calls broken (a progressive
// file whose scans repeat a band, "Inconsistent progression sequence";
// stray bytes between markers); only a file both refuse is corrupt.
//
// The image/jpeg fallback stops, failing with ctx's error, once ctx is
// done; libvips runs to its end (see budget.go).
func (c *Compressor) decode(ctx context.Context, f Format, data []byte, hdr image.Config) (*decoded, error) {
	orient := orientation(1)
	shrink := 1
	if f == JPEG {
		orient = jpegOrientation(data)
		shrink = shrinkFor(hdr.Width, hdr.Height, c.cfg.MaxSide)
	}
	img, err := decodeVips(f, data, shrink, c.cfg.MaxSide)
	if err == nil {
		return &decoded{img: img, orient: orient, shrink: shrink, fitted: true}, nil
	}
	if f != JPEG {
		return nil, corrupt(f, err)
	}
	img, jerr := jpeg.Decode(ctxReader{ctx, bytes.NewReader(data)})
	if cerr := ctx.Err(); cerr != nil {
		return nil, cerr
	}
	if jerr != nil {
		// libjpeg's words say more than image/jpeg's ("Premature end of
		// JPEG file" against "unexpected EOF").
		return nil, corrupt(f, err)
	}
	return &decoded{img: img, orient: orient, shrink: 1}, nil
}

// shrinkFor returns the factor, 1, 2, 4 or 8, by which libjpeg shrinks a
// w × h JPEG in the DCT domain while decoding it for a side × side box: the
// largest that leaves the picture at least twice the box, so that the
// Lanczos filter of the fit still reduces it by a factor of two or more and
// smooths the blockiness of the DCT shrink, as vipsthumbnail does.
func shrinkFor(w, h, side int) int {
	long := max(w, h)
	n := 1
	for n < 8 && (long+2*n-1)/(2*n) >= 2*side {
		n *= 2
	}
	return n
}

// decodeVips loads data through libvips, shrinking a JPEG n times, fits it
// into a side × side box with Lanczos-3, and returns its pixels as an
// *image.Gray, an opaque *image.RGBA, or an *image.NRGBA when it has
// alpha. libvips loads lazily: the file is decoded when the pixels are read
// (ToBytes), so a damaged one fails there.
func decodeVips(f Format, data []byte, n, side int) (image.Image, error) {
	params := vips.NewImportParams() // fail: a damaged file is an error, not a grey patch
	if f == JPEG && n > 1 {
		params.JpegShrinkFactor.Set(n)
	}
	ref, err := vips.LoadImageFromBuffer(data, params)
	if err != nil {
		return nil, vipsError(err)
	}
	defer ref.Close()
	if err := toSRGB8(ref); err != nil {
		return nil, vipsError(err)
	}
	if w, h := fitSize(ref.Width(), ref.Height(), side); w != ref.Width() || h != ref.Height() {
		// Separate scales hit both sides exactly; the alpha-weighting
		// round trip leaves floats behind.
		if err := ref.ResizeWithVScale(float64(w)/float64(ref.Width()), float64(h)/float64(ref.Height()), vips.KernelLanczos3); err != nil {
			return nil, vipsError(err)
		}
		if ref.BandFormat() != vips.BandFormatUchar {
			if err := ref.Cast(vips.BandFormatUchar); err != nil {
				return nil, vipsError(err)
			}
		}
	}
	pix, err := ref.ToBytes()
	if err != nil {
		return nil, vipsError(err)
	}
	w, h, bands := ref.Width(), ref.Height(), ref.Bands()
	if len(pix) != w*h*bands {
		return nil, fmt.Errorf("libvips returned %d bytes for %dx%d pixels of %d bands", len(pix), w, h, bands)
	}
	r := image.Rect(0, 0, w, h)
	switch bands {
	case 1:
		return &image.Gray{Pix: pix, Stride: w, Rect: r}, nil
	case 2:
		out := image.NewNRGBA(r)
		for i, j := 0, 0; i < len(pix); i, j = i+2, j+4 {
			g, a := pix[i], pix[i+1]
			out.Pix[j], out.Pix[j+1], out.Pix[j+2], out.Pix[j+3] = g, g, g, a
		}
		return out, nil
	case 3:
		out := image.NewRGBA(r)
		for i, j := 0, 0; i < len(pix); i, j = i+3, j+4 {
			out.Pix[j], out.Pix[j+1], out.Pix[j+2], out.Pix[j+3] = pix[i], pix[i+1], pix[i+2], 0xff
		}
		return out, nil
	case 4:
		return &image.NRGBA{Pix: pix, Stride: 4 * w, Rect: r}, nil
	}
	return nil, fmt.Errorf("libvips decoded %d bands", bands)
}

// toSRGB8 turns ref into 8-bit sRGB or greyscale, with or without alpha:
// CMYK, 16-bit and other spaces are converted by libvips.
func toSRGB8(ref *vips.ImageRef) error {
	interp := ref.Interpretation()
	if ref.BandFormat() == vips.BandFormatUchar && (interp == vips.InterpretationSRGB || interp == vips.InterpretationBW) {
		return nil
	}
	target := vips.InterpretationSRGB
	if interp == vips.InterpretationBW || interp == vips.InterpretationGrey16 {
		target = vips.InterpretationBW
	}
	if err := ref.ToColorSpace(target); err != nil {
		return err
	}
	if ref.BandFormat() != vips.BandFormatUchar {
		return ref.Cast(vips.BandFormatUchar)
	}
	return nil
}

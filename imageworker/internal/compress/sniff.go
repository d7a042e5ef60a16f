package compress

import (
	"bytes"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"net/http"

	"golang.org/x/image/webp"

	"github.com/productd/productd"
)

// Format is an accepted image format.
type Format string

// The accepted formats. Anything else is refused before any decoder sees it.
const (
	JPEG Format = "jpeg"
	PNG  Format = "png"
	GIF  Format = "gif"
	WebP Format = "webp"
)

// ContentType returns the MIME type of f.
func (f Format) ContentType() string { return "image/" + string(f) }

// Ext returns the usual file extension of f, without the dot.
func (f Format) Ext() string {
	if f == JPEG {
		return "jpg"
	}
	return string(f)
}

// Sniff returns the format of data from its content, whatever its name or
// declared type. Anything outside the allow-list is an EUNSUPPORTED error
// that names what the content looks like.
func Sniff(data []byte) (Format, error) {
	switch ct := http.DetectContentType(data); ct {
	case "image/jpeg":
		return JPEG, nil
	case "image/png":
		return PNG, nil
	case "image/gif":
		return GIF, nil
	case "image/webp":
		return WebP, nil
	default:
		if len(data) == 0 {
			return "", productd.Errorf(productd.EUNSUPPORTED, "the file is empty")
		}
		return "", productd.Errorf(productd.EUNSUPPORTED, "the file is not an image but %s; JPEG, PNG, GIF and WebP are accepted", ct)
	}
}

// decodeConfig reads only the header of data: its dimensions, without
// allocating or decoding any pixel.
func decodeConfig(f Format, data []byte) (image.Config, error) {
	var cfg image.Config
	var err error
	r := bytes.NewReader(data)
	switch f {
	case JPEG:
		cfg, err = jpeg.DecodeConfig(r)
	case PNG:
		cfg, err = png.DecodeConfig(r)
	case GIF:
		cfg, err = gif.DecodeConfig(r)
	case WebP:
		cfg, err = webp.DecodeConfig(r)
	}
	if err != nil {
		return cfg, corrupt(f, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return cfg, productd.Errorf(productd.EUNPROCESSABLE, "the %s file claims %dx%d pixels", f, cfg.Width, cfg.Height)
	}
	return cfg, nil
}

// corrupt is the error for a file whose content the decoder refused.
func corrupt(f Format, err error) error {
	return productd.Errorf(productd.EUNPROCESSABLE, "the %s file is corrupt or truncated (%v)", f, err)
}

package compress

// #cgo pkg-config: vips
// #include <vips/vips.h>
import "C"

import (
	"errors"
	"strings"
)

// vipsError turns a failure of libvips into an error that says why. govips
// returns some failures, those met while reading pixels among them, without
// libvips' message: the message is then taken from libvips' error buffer,
// which is process-wide, so when two images fail at the same moment one of
// them may only learn that it failed. Only the first line is kept: it names
// the problem; the rest is the call chain, in govips' case a Go stack.
func vipsError(err error) error {
	msg := err.Error()
	if p := C.vips_error_buffer_copy(); p != nil {
		if buf := C.GoString(p); strings.TrimSpace(buf) != "" && !strings.Contains(msg, "\n") {
			msg = buf
		}
		C.g_free(C.gpointer(p))
	}
	msg = strings.TrimSpace(msg)
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	return errors.New(strings.TrimSpace(strings.TrimPrefix(msg, "VipsJpeg:")))
}

package compress

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
)

// This file keeps one image from taking more than its share of a worker.
// Two limits are known before any pixel is decoded: the pixel count the
// header declares (Compress) and, for a JPEG, its number of scans. A
// progressive JPEG is decoded in passes, one per scan, each over every
// block of its components, and a few bytes make a scan (an end-of-band run
// skips up to 32,767 blocks): a file of a few hundred kilobytes can ask for
// thousands of passes over tens of millions of pixels. Encoders write 1
// scan (baseline) or about 10 (libjpeg's progressive script).
//
// What the limits let through is bounded by the wall-time budget. libvips
// cannot be stopped in the middle of a file: govips does not expose the
// image it wraps to vips_image_set_kill, and that flag is only read between
// the tiles libvips computes, while libjpeg reads every scan of a
// progressive file in one call (jpeg_start_decompress) before the first
// tile. So when the budget runs out or the caller gives up, Compress
// returns at once and the libvips call finishes on its own thread, its
// work bounded by the two limits; image/jpeg, the fallback, reads through
// a reader that fails once the budget is spent, and stops within one
// buffer of input.

// errOverBudget is the cause of a budget's context that ran out.
var errOverBudget = errors.New("over budget")

// jpegScans counts the scans (SOS segments) of a JPEG by walking its
// markers, without decoding: past limit it stops and returns limit+1. The
// walk skips entropy-coded data with bytes.IndexByte, so it costs little
// next to a decode even on a 25 MiB file. Damaged structure ends the walk:
// the decoder reports it.
func jpegScans(data []byte, limit int) int {
	n := 0
	for p := 2; p+4 <= len(data) && n <= limit; {
		if data[p] != 0xFF {
			return n
		}
		marker := data[p+1]
		switch {
		case marker == 0xFF: // fill byte before a marker
			p++
			continue
		case marker == 0xD9: // end of image
			return n
		case marker >= 0xD0 && marker <= 0xD7, marker == 0x01: // no length
			p += 2
			continue
		}
		p += 2 + int(binary.BigEndian.Uint16(data[p+2:]))
		if marker != 0xDA {
			continue
		}
		n++
		// The scan's data runs to the next 0xFF that is neither a stuffed
		// 0x00 nor a restart marker.
		for p < len(data) {
			i := bytes.IndexByte(data[p:], 0xFF)
			if i < 0 || p+i+1 >= len(data) {
				return n
			}
			p += i
			if next := data[p+1]; next != 0 && (next < 0xD0 || next > 0xD7) {
				break
			}
			p += 2
		}
	}
	return n
}

// ctxReadChunk bounds each read of a ctxReader. image/jpeg decodes a
// whole scan between two reads, and a costly file packs hundreds of scans of
// a few bytes each into one 4 KiB buffer: handing it a few hundred bytes at
// a time lets a decode that ctx left behind stop after a few scans instead
// of after the buffer's hundreds, which held a core for seconds.
const ctxReadChunk = 256

// ctxReader reads r until ctx is done, then fails with ctx's error.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p[:min(len(p), ctxReadChunk)])
}

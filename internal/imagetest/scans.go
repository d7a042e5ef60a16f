package imagetest

import (
	"encoding/binary"
	"fmt"
)

// RepeatScan returns a copy of the progressive JPEG data with its index-th
// scan (counting from 0) written times more times right after itself.
// Repeating a first scan of a band is what libjpeg-turbo calls an
// "Inconsistent progression sequence" and image/jpeg decodes anyway, once
// per copy: a few repeats make a file only one of them accepts, thousands
// of repeats of a scan that is all end-of-band runs make a small file that
// costs a decoder a pass over every block per copy.
func RepeatScan(data []byte, index, times int) ([]byte, error) {
	scans, err := scanSpans(data)
	if err != nil {
		return nil, err
	}
	if index < 0 || index >= len(scans) {
		return nil, fmt.Errorf("the JPEG has %d scans, no scan %d", len(scans), index)
	}
	s := scans[index]
	scan := data[s[0]:s[1]]
	out := make([]byte, 0, len(data)+times*len(scan))
	out = append(out, data[:s[1]]...)
	for range times {
		out = append(out, scan...)
	}
	return append(out, data[s[1]:]...), nil
}

// scanSpans returns the start and end offsets of each scan of a JPEG: its
// SOS segment and the entropy-coded data after it, up to the next marker
// that is not a restart.
func scanSpans(data []byte) ([][2]int, error) {
	if len(data) < 2 || data[0] != 0xFF || data[1] != 0xD8 {
		return nil, fmt.Errorf("not a JPEG")
	}
	var spans [][2]int
	for p := 2; p+2 <= len(data); {
		if data[p] != 0xFF {
			return nil, fmt.Errorf("no marker at offset %d", p)
		}
		marker := data[p+1]
		if marker == 0xD9 {
			return spans, nil
		}
		if p+4 > len(data) {
			break
		}
		end := p + 2 + int(binary.BigEndian.Uint16(data[p+2:]))
		if marker == 0xDA {
			// Entropy-coded data runs to the next marker: 0xFF followed by
			// neither a stuffed 0x00 nor a restart marker 0xD0..0xD7.
			for end+1 < len(data) && (data[end] != 0xFF || data[end+1] == 0 || data[end+1]&0xF8 == 0xD0) {
				end++
			}
			spans = append(spans, [2]int{p, end})
		}
		p = end
	}
	return nil, fmt.Errorf("no end of image")
}

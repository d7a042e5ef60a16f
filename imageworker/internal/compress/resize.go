package compress

import (
	"math"
)

// This file resamples 8-bit planes, the luma and chroma of a JPEG decoded
// by image/jpeg, without ever turning them into RGBA: a 4:2:0 photograph is
// 1.5 bytes a pixel as planes and 4 as RGBA, and resampling in integers is
// several times cheaper than imaging's float RGBA path.
//
// The filter is Lanczos-3, the filter libvips reduces with: sharp without
// visible ringing.

// plane is one 8-bit channel of an image.
type plane struct {
	pix    []byte
	stride int
	w, h   int
}

func newPlane(w, h int) plane {
	return plane{pix: make([]byte, w*h), stride: w, w: w, h: h}
}

// row returns the pixels of row y.
func (p plane) row(y int) []byte { return p.pix[y*p.stride : y*p.stride+p.w] }

// weightBits is the fixed-point precision of filter weights: 14 bits keep a
// sum of 12 taps × 255 × 2^14 well inside an int32.
const weightBits = 14

// taps are the weights that make each output pixel from consecutive input
// pixels: output i is Σk w[i*n+k] · in[start[i]+k].
type taps struct {
	n     int
	start []int
	w     []int32
}

func lanczos3(x float64) float64 {
	x = math.Abs(x)
	if x >= 3 {
		return 0
	}
	if x < 1e-9 {
		return 1
	}
	px := math.Pi * x
	return 3 * math.Sin(px) * math.Sin(px/3) / (px * px)
}

// makeTaps computes the weights for resampling src pixels to dst pixels,
// dst ≤ src. Taps that would fall outside the input are folded onto the
// edge pixel, so borders keep their brightness.
func makeTaps(dst, src int) taps {
	scale := float64(src) / float64(dst)
	support := 3 * max(scale, 1)
	fw := make([]float64, int(math.Ceil(2*support))+1) // the filter's window
	n := min(len(fw), src)                             // the window kept, inside the input
	t := taps{n: n, start: make([]int, dst), w: make([]int32, dst*n)}
	for i := range dst {
		center := (float64(i)+0.5)*scale - 0.5
		first := int(math.Floor(center-support)) + 1
		var sum float64
		for k := range fw {
			fw[k] = lanczos3((float64(first+k) - center) / max(scale, 1))
			sum += fw[k]
		}
		// Clamp the window into the input, moving the weights of
		// out-of-range pixels onto the nearest edge pixel.
		start := min(max(first, 0), max(src-n, 0))
		t.start[i] = start
		w := t.w[i*n : (i+1)*n]
		var total int32
		var peak int
		for k, f := range fw {
			j := min(max(first+k, 0), src-1) - start
			q := int32(math.Round(f / sum * (1 << weightBits)))
			w[j] += q
			total += q
			if w[j] > w[peak] {
				peak = j
			}
		}
		// Rounding leaves the sum a little off one; put the difference on
		// the largest weight so flat areas stay exactly flat.
		w[peak] += 1<<weightBits - total
	}
	return t
}

// clamp8 rounds a fixed-point sum and clips it to a byte.
func clamp8(v int32) byte {
	v = (v + 1<<(weightBits-1)) >> weightBits
	if uint32(v) > 255 {
		v = ^v >> 31 & 255
	}
	return byte(v)
}

// resizePlane resamples src into dst, whose size sets the output size. The
// vertical pass runs first: it is the cheaper per tap (four columns share
// each weight), so it takes the larger input.
func resizePlane(dst, src plane) {
	mid := src
	if dst.h != src.h {
		mid = newPlane(src.w, dst.h)
		resizeColumns(mid, src, makeTaps(dst.h, src.h))
	}
	if dst.w == src.w {
		for y := range dst.h {
			copy(dst.row(y), mid.row(y))
		}
		return
	}
	resizeRows(dst, mid, makeTaps(dst.w, src.w))
}

// resizeRows resamples each row of src into the row of dst.
func resizeRows(dst, src plane, t taps) {
	n := t.n
	for y := range src.h {
		in, out := src.row(y), dst.row(y)
		for x := range out {
			w := t.w[x*n : x*n+n]
			p := in[t.start[x] : t.start[x]+len(w)]
			var sum int32
			for k, wk := range w {
				sum += wk * int32(p[k])
			}
			out[x] = clamp8(sum)
		}
	}
}

// resizeColumns resamples the columns of src into dst, a row of output at a
// time from the rows of input under the filter, so memory is read in order,
// and four columns at a time, so each weight is loaded once for four pixels.
func resizeColumns(dst, src plane, t taps) {
	n := t.n
	for y := range dst.h {
		w := t.w[y*n : y*n+n]
		top := t.start[y] * src.stride
		out := dst.row(y)
		x := 0
		for ; x+4 <= len(out); x += 4 {
			var s0, s1, s2, s3 int32
			off := top + x
			for _, wk := range w {
				p := src.pix[off : off+4 : off+4]
				s0 += wk * int32(p[0])
				s1 += wk * int32(p[1])
				s2 += wk * int32(p[2])
				s3 += wk * int32(p[3])
				off += src.stride
			}
			o := out[x : x+4 : x+4]
			o[0], o[1], o[2], o[3] = clamp8(s0), clamp8(s1), clamp8(s2), clamp8(s3)
		}
		for ; x < len(out); x++ {
			var sum int32
			off := top + x
			for _, wk := range w {
				sum += wk * int32(src.pix[off])
				off += src.stride
			}
			out[x] = clamp8(sum)
		}
	}
}

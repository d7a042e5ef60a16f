package jpegscale

import "math"

// This file is not part of the standard library's decoder: it turns one
// dequantized block into N×N pixels, N from 1 to 7 (8 is idct's).
//
// An N×N block is the N-point inverse DCT of the block's N×N lowest
// frequencies, as libjpeg 7 and later scale: frequencies the smaller block
// cannot hold are dropped instead of aliased, and the DC term gives every
// pixel the block's mean, as a box filter would. With JPEG's normalisation
// (F(0,0) is 8 times the mean) the N-point transform is
//
//	p(x,y) = 128 + 1/4 Σu Σv C(u) C(v) F(v,u) cos((2x+1)uπ/2N) cos((2y+1)vπ/2N)
//
// with C(0) = 1/√2 and C(k) = 1 otherwise, for u, v < N.

// clamp level-shifts an inverse DCT output by +128 and clips it to a byte.
func clamp(v int32) uint8 {
	v += 128
	if uint32(v) > 255 {
		// Negative values become 0 and large ones 255, without a branch
		// on which.
		v = ^v >> 31 & 255
	}
	return uint8(v)
}

// idct2 writes the 2×2 inverse DCT of b's 2×2 lowest frequencies to dst,
// the scale of large photographs. Every C(u)·cos((2x+1)uπ/4) is ±1/√2, so a
// pixel is a signed sum of the four coefficients over 8.
func idct2(b *block, dst []byte, stride int) {
	f00, f01, f10, f11 := int64(b[0]), int64(b[1]), int64(b[8]), int64(b[9])
	a, c := f00+f10, f00-f10 // the top and bottom rows, before the columns
	e, g := f01+f11, f01-f11
	dst[0], dst[1] = clamp(int32((a+e+4)>>3)), clamp(int32((a-e+4)>>3))
	dst[stride], dst[stride+1] = clamp(int32((c+g+4)>>3)), clamp(int32((c-g+4)>>3))
}

// dcPixel returns the value of every pixel of a block whose AC coefficients
// are all zero: its mean, F(0,0)/8, rounded as idct rounds it.
func dcPixel(dc int32) uint8 {
	return clamp((dc + 4) >> 3)
}

// fill sets an n×n square of dst to v.
func fill(dst []byte, stride, n int, v uint8) {
	for y := 0; y < n; y++ {
		row := dst[y*stride : y*stride+n]
		for x := range row {
			row[x] = v
		}
	}
}

// kBits is the fixed-point precision of the transform's cosines.
const kBits = 13

// kN[n][x][u] is C(u)·cos((2x+1)uπ/2n) with kBits fractional bits, zero
// for x or u ≥ n.
var kN = func() (k [8][8][8]int64) {
	for n := 1; n < 8; n++ {
		for x := range n {
			for u := range n {
				c := math.Cos(float64(2*x+1) * float64(u) * math.Pi / float64(2*n))
				if u == 0 {
					c = math.Sqrt2 / 2
				}
				k[n][x][u] = int64(math.Round(c * (1 << kBits)))
			}
		}
	}
	return k
}()

// zigLimit[n] is the zig-zag index past the last of a block's n×n lowest
// frequencies: the coefficients an n×n block is made of.
var zigLimit = func() (lim [9]int) {
	for n := 1; n <= 8; n++ {
		for zig, i := range unzig {
			if i%8 < n && i/8 < n {
				lim[n] = zig + 1
			}
		}
	}
	return lim
}()

// idctN writes the n×n inverse DCT of b's n×n lowest frequencies to dst,
// 2 < n < 8. A photograph's blocks are sparse, high frequencies mostly zero,
// so each pass runs only over the rows and columns of frequencies that are
// not. It works in int64 so that no input, however corrupt, overflows, and
// fixed-size arrays with masked indices keep bounds checks out of the loops.
func idctN(b *block, n int, dst []byte, stride int) {
	k := &kN[n&7]
	// Rows of frequencies into rows of pixel positions: t[v][x], for the
	// rows vs[:nv] that have a non-zero frequency.
	var t [8][8]int64
	var vs [8]int
	nv := 0
	for v := 0; v < n; v++ {
		f := (*[8]int32)(b[8*(v&7):])
		last := -1
		for u := 0; u < n; u++ {
			if f[u&7] != 0 {
				last = u
			}
		}
		if last < 0 {
			continue
		}
		tv := &t[v&7]
		for x := 0; x < n; x++ {
			kx := &k[x&7]
			var s int64
			for u := 0; u <= last; u++ {
				s += kx[u&7] * int64(f[u&7])
			}
			tv[x&7] = s
		}
		vs[nv&7] = v
		nv++
	}
	// Columns, then the transform's 1/4 and the fixed point's scale.
	const shift = 2*kBits + 2
	for y := 0; y < n; y++ {
		ky := &k[y&7]
		row := dst[y*stride : y*stride+n]
		for x := range row {
			s := int64(1) << (shift - 1)
			for i := 0; i < nv; i++ {
				v := vs[i&7] & 7
				s += ky[v] * t[v][x&7]
			}
			row[x] = clamp(int32(s >> shift))
		}
	}
}

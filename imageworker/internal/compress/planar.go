package compress

import (
	"image"
)

// This file fits and turns the planes of a JPEG that image/jpeg decoded
// because libvips refused it, and turns libvips' greyscale pictures, in
// integers, handing the encoder a form it reads directly.

// fitSize returns the size of a w × h picture fitted into a side × side box,
// never larger than it was.
func fitSize(w, h, side int) (int, int) {
	if w <= side && h <= side {
		return w, h
	}
	if w >= h {
		return side, max(1, (h*side+w/2)/w)
	}
	return max(1, (w*side+h/2)/h), side
}

// chromaSize returns the size of the chroma planes of a w × h YCbCr image.
func chromaSize(r image.YCbCrSubsampleRatio, w, h int) (int, int) {
	switch r {
	case image.YCbCrSubsampleRatio422:
		return (w + 1) / 2, h
	case image.YCbCrSubsampleRatio420:
		return (w + 1) / 2, (h + 1) / 2
	case image.YCbCrSubsampleRatio440:
		return w, (h + 1) / 2
	case image.YCbCrSubsampleRatio411:
		return (w + 3) / 4, h
	case image.YCbCrSubsampleRatio410:
		return (w + 3) / 4, (h + 1) / 2
	}
	return w, h
}

// fitYCbCr fits m into a side × side box and turns it upright. The result
// is 4:2:0, as the encoder writes it.
func fitYCbCr(m *image.YCbCr, side int, o orientation) *image.YCbCr {
	b := m.Bounds()
	w, h := fitSize(b.Dx(), b.Dy(), side)
	out := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	cw, ch := chromaSize(m.SubsampleRatio, b.Dx(), b.Dy())
	co := m.COffset(b.Min.X, b.Min.Y)
	resizePlane(plane{out.Y, out.YStride, w, h}, plane{m.Y[m.YOffset(b.Min.X, b.Min.Y):], m.YStride, b.Dx(), b.Dy()})
	ocw, och := chromaSize(image.YCbCrSubsampleRatio420, w, h)
	resizePlane(plane{out.Cb, out.CStride, ocw, och}, plane{m.Cb[co:], m.CStride, cw, ch})
	resizePlane(plane{out.Cr, out.CStride, ocw, och}, plane{m.Cr[co:], m.CStride, cw, ch})
	if o == 1 {
		return out
	}
	rw, rh := w, h
	if o.transposed() {
		rw, rh = h, w
	}
	turned := image.NewYCbCr(image.Rect(0, 0, rw, rh), image.YCbCrSubsampleRatio420)
	rcw, rch := chromaSize(image.YCbCrSubsampleRatio420, rw, rh)
	o.turn(plane{turned.Y, turned.YStride, rw, rh}, plane{out.Y, out.YStride, w, h})
	o.turn(plane{turned.Cb, turned.CStride, rcw, rch}, plane{out.Cb, out.CStride, ocw, och})
	o.turn(plane{turned.Cr, turned.CStride, rcw, rch}, plane{out.Cr, out.CStride, ocw, och})
	return turned
}

// fitGray fits a greyscale m into a side × side box and turns it upright.
func fitGray(m *image.Gray, side int, o orientation) *image.Gray {
	b := m.Bounds()
	w, h := fitSize(b.Dx(), b.Dy(), side)
	out := image.NewGray(image.Rect(0, 0, w, h))
	resizePlane(plane{out.Pix, out.Stride, w, h}, plane{m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], m.Stride, b.Dx(), b.Dy()})
	if o == 1 {
		return out
	}
	rw, rh := w, h
	if o.transposed() {
		rw, rh = h, w
	}
	turned := image.NewGray(image.Rect(0, 0, rw, rh))
	o.turn(plane{turned.Pix, turned.Stride, rw, rh}, plane{out.Pix, out.Stride, w, h})
	return turned
}

// turn writes src, turned upright by o, into dst, whose size must be src's
// (swapped when o transposes).
func (o orientation) turn(dst, src plane) {
	for y := range dst.h {
		row := dst.row(y)
		for x := range row {
			sx, sy := o.source(x, y, dst.w, dst.h)
			row[x] = src.pix[sy*src.stride+sx]
		}
	}
}

// source returns where the pixel at (x, y) of the upright w × h picture
// lies in the stored one.
func (o orientation) source(x, y, w, h int) (int, int) {
	switch o {
	case 2: // mirrored
		return w - 1 - x, y
	case 3: // upside down
		return w - 1 - x, h - 1 - y
	case 4: // mirrored upside down
		return x, h - 1 - y
	case 5: // mirrored along the main diagonal
		return y, x
	case 6: // stored turned 90° counter-clockwise
		return y, w - 1 - x
	case 7: // mirrored along the other diagonal
		return h - 1 - y, w - 1 - x
	case 8: // stored turned 90° clockwise
		return h - 1 - y, x
	}
	return x, y
}

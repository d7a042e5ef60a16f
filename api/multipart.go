package api

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/productd/productd"
)

// Limits of a multipart request, on top of Config.MaxUploadBytes for the
// whole body.
const (
	// MaxImageFileBytes caps one uploaded image, as the image worker caps
	// a download.
	MaxImageFileBytes = 25 << 20
	// maxFieldBytes caps one text field: the longest, a description of
	// 5,000 characters, is at most 20 KB of UTF-8.
	maxFieldBytes = 64 << 10
)

// The multipart field names: the JSON body's, with image URLs and image
// files in fields of their own.
const (
	fieldImageURLs  = "product_image_urls"
	fieldImageFiles = "product_images"
)

// acceptedImageTypes are the upload types the image worker can compress,
// as sniffed from the content.
var acceptedImageTypes = map[string]bool{"image/jpeg": true, "image/png": true, "image/gif": true, "image/webp": true}

// multipartForm is a multipart request read whole: its text fields in
// order of appearance, and its image files, each spooled to a temporary
// file as it arrives, so that memory stays small whatever their size.
// close removes the files.
type multipartForm struct {
	fields map[string][]string
	urls   []string
	// urlsSent tells an empty product_image_urls (clear the images) from
	// none at all (keep them), for PATCH.
	urlsSent bool
	files    []uploadedFile
}

// uploadedFile is one image file of a request, in a temporary file.
type uploadedFile struct {
	name        string
	contentType string
	path        string
	size        int64
	sha256      []byte
}

// close removes the form's temporary files.
func (f *multipartForm) close() {
	for _, file := range f.files {
		_ = os.Remove(file.path)
	}
}

// readMultipart reads the whole request, refusing unknown fields, more
// than productd.MaxImages images, oversized parts and files that are not
// accepted images, and every multipart request when the server has no store
// for uploads. allowed lists the text fields the request may carry. The
// caller closes the form, which is nil on error.
func (s *Server) readMultipart(c *gin.Context, allowed ...string) (form *multipartForm, err error) {
	if s.cfg.Originals == nil {
		return nil, productd.Errorf(productd.EUNSUPPORTED, "multipart/form-data uploads are not enabled on this server; send JSON with image URLs")
	}
	_, params, err := mime.ParseMediaType(c.GetHeader("Content-Type"))
	if err != nil || params["boundary"] == "" {
		return nil, productd.Errorf(productd.EINVALID, "multipart/form-data without a boundary")
	}
	body := http.MaxBytesReader(c.Writer, c.Request.Body, s.cfg.MaxUploadBytes)
	mr := multipart.NewReader(body, params["boundary"])
	read := &multipartForm{fields: map[string][]string{}}
	defer func() {
		if err != nil {
			read.close()
		}
	}()
	form = read
	known := map[string]bool{}
	for _, f := range allowed {
		known[f] = true
	}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, s.multipartError(err)
		}
		name := part.FormName()
		switch {
		case name == fieldImageFiles && part.FileName() != "":
			f, err := readImageFile(part, len(form.files), s.cfg.SpoolDir)
			if err != nil {
				return nil, s.multipartError(err)
			}
			form.files = append(form.files, f)
		case name == fieldImageURLs || name == fieldImageFiles:
			// A product_images part that is not a file is taken for a URL,
			// as in the JSON body.
			v, err := readField(part)
			if err != nil {
				return nil, s.multipartError(err)
			}
			form.urlsSent = true
			if v != "" {
				form.urls = append(form.urls, v)
			}
		case known[name]:
			if len(form.fields[name]) > 0 {
				return nil, productd.Errorf(productd.EINVALID, "%s is given more than once", name)
			}
			v, err := readField(part)
			if err != nil {
				return nil, s.multipartError(err)
			}
			form.fields[name] = []string{v}
		default:
			return nil, productd.Errorf(productd.EINVALID, "unknown field %q", name)
		}
		if n := len(form.urls) + len(form.files); n > productd.MaxImages {
			return nil, productd.Errorf(productd.EUNPROCESSABLE, "product_images has more than %d entries", productd.MaxImages)
		}
	}
	return form, nil
}

// readField reads a text part.
func readField(part *multipart.Part) (string, error) {
	b, err := io.ReadAll(io.LimitReader(part, maxFieldBytes+1))
	if err != nil {
		return "", err
	}
	if len(b) > maxFieldBytes {
		return "", productd.Errorf(productd.ETOOLARGE, "field %s is over %d bytes", part.FormName(), maxFieldBytes)
	}
	return string(b), nil
}

// sniffLen is how much of a file http.DetectContentType looks at.
const sniffLen = 512

// readImageFile sniffs the type of the index-th file part and spools it to
// a temporary file in dir, hashing it on the way.
func readImageFile(part *multipart.Part, index int, dir string) (f uploadedFile, err error) {
	f.name = part.FileName()
	head := make([]byte, sniffLen)
	n, err := io.ReadFull(part, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return f, err
	}
	head = head[:n]
	f.contentType = http.DetectContentType(head)
	if !acceptedImageTypes[f.contentType] {
		return f, productd.Errorf(productd.EUNSUPPORTED, "image file %d (%s) is %s, not a JPEG, PNG, GIF or WebP image", index+1, f.name, f.contentType)
	}
	tmp, err := os.CreateTemp(dir, "productd-upload-*")
	if err != nil {
		return f, fmt.Errorf("spool image file %d: %w", index+1, err)
	}
	f.path = tmp.Name()
	defer func() {
		if cerr := tmp.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("spool image file %d: %w", index+1, cerr)
		}
		if err != nil {
			_ = os.Remove(f.path)
		}
	}()
	sum := sha256.New()
	f.size, err = io.Copy(io.MultiWriter(tmp, sum), io.LimitReader(io.MultiReader(bytes.NewReader(head), part), MaxImageFileBytes+1))
	if err != nil {
		return f, err
	}
	if f.size > MaxImageFileBytes {
		return f, productd.Errorf(productd.ETOOLARGE, "image file %d (%s) is over the limit of %d MiB", index+1, f.name, MaxImageFileBytes>>20)
	}
	f.sha256 = sum.Sum(nil)
	return f, nil
}

// multipartError turns a read error into the client's error: a body over
// the limit is 413, a broken body 400; application errors pass unchanged.
func (s *Server) multipartError(err error) error {
	var appErr *productd.Error
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &appErr):
		return appErr
	case errors.As(err, &tooLarge):
		return bodyTooLarge(s.cfg.MaxUploadBytes)
	}
	return productd.Errorf(productd.EINVALID, "malformed multipart body: %v", err)
}

// fileHashes returns the SHA-256 of every file, in order: what identifies
// the uploads of a request for idempotency, since their stored URLs are new
// on every try.
func (f *multipartForm) fileHashes() [][]byte {
	hashes := make([][]byte, len(f.files))
	for i, file := range f.files {
		hashes[i] = file.sha256
	}
	return hashes
}

// value returns the single value of a text field and whether it was sent.
func (f *multipartForm) value(name string) (string, bool) {
	v := f.fields[name]
	if len(v) == 0 {
		return "", false
	}
	return v[0], true
}

// storeFiles streams the form's files to storage as uploads no product
// owns yet and returns them. When one fails, those already stored are
// released again.
func (s *Server) storeFiles(c *gin.Context, files []uploadedFile) ([]productd.Upload, error) {
	if len(files) == 0 {
		return nil, nil
	}
	stored := make([]productd.Upload, 0, len(files))
	for _, f := range files {
		u, err := s.storeFile(c, f)
		if err != nil {
			s.releaseUploads(c, stored)
			return nil, fmt.Errorf("store uploaded image %s: %w", f.name, err)
		}
		stored = append(stored, u)
	}
	return stored, nil
}

func (s *Server) storeFile(c *gin.Context, f uploadedFile) (productd.Upload, error) {
	file, err := os.Open(f.path)
	if err != nil {
		return productd.Upload{}, err
	}
	defer file.Close()
	return s.cfg.Originals.PutOriginal(c.Request.Context(), f.contentType, file, f.size)
}

// acquireUpload takes one of Config.MaxConcurrentUploads slots for a
// multipart request, or refuses it with a 503 the client may retry when
// they are all taken: uploads cost disk, bandwidth to storage and time,
// and a burst of them must not take the server down. Call the returned
// function when the request's files are stored.
func (s *Server) acquireUpload() (release func(), err error) {
	select {
	case s.uploads <- struct{}{}:
		return func() { <-s.uploads }, nil
	default:
		return nil, productd.Errorf(productd.EUNAVAILABLE, "the server is taking %d uploads already; retry shortly", cap(s.uploads))
	}
}

// releaseUploads removes this request's uploads that no product claimed.
// A failure is logged, not returned: the client's answer does not change,
// and the uploads' sweep removes them later.
func (s *Server) releaseUploads(c *gin.Context, uploads []productd.Upload) {
	if len(uploads) == 0 || s.cfg.Originals == nil {
		return
	}
	if err := s.cfg.Originals.ReleaseOriginals(c.Request.Context(), uploads); err != nil {
		s.cfg.Log.WithField(requestIDKey, c.GetString(requestIDKey)).WithError(err).Warn("remove unclaimed uploads")
	}
}

// urls returns the URLs of uploads.
func urls(uploads []productd.Upload) []string {
	out := make([]string, len(uploads))
	for i, u := range uploads {
		out[i] = u.URL
	}
	return out
}

// decodeMultipartCreate reads a multipart create request: the product fields
// and up to productd.MaxImages images, URLs in product_image_urls parts and
// files in product_images parts; product_images lists the URLs first, then
// the files, each in the order sent. It stores the files through
// Config.Originals before the product's transaction, which claims them
// (p.Uploads), and returns them, so that the caller can release them if no
// product is created, and the idempotency hash of the request.
func (s *Server) decodeMultipartCreate(c *gin.Context) (p *productd.Product, hash []byte, stored []productd.Upload, err error) {
	release, err := s.acquireUpload()
	if err != nil {
		return nil, nil, nil, err
	}
	defer release()
	form, err := s.readMultipart(c, "user_id", "product_name", "product_description", "product_price")
	if err != nil {
		return nil, nil, nil, err
	}
	defer form.close()
	p = &productd.Product{Images: form.urls}
	userID, ok := form.value("user_id")
	if !ok {
		return nil, nil, nil, productd.Errorf(productd.EUNPROCESSABLE, "user_id is required")
	}
	if p.UserID, err = strconv.ParseInt(userID, 10, 64); err != nil {
		return nil, nil, nil, productd.Errorf(productd.EINVALID, "user_id must be an integer, not %q", userID)
	}
	if p.Name, ok = form.value("product_name"); !ok {
		return nil, nil, nil, productd.Errorf(productd.EUNPROCESSABLE, "product_name is required")
	}
	p.Description, _ = form.value("product_description")
	price, ok := form.value("product_price")
	if !ok {
		return nil, nil, nil, productd.Errorf(productd.EUNPROCESSABLE, "product_price is required")
	}
	if p.Price, err = productd.ParsePrice(price); err != nil {
		return nil, nil, nil, err
	}
	// Check everything before storing anything.
	if err := p.Validate(); err != nil {
		return nil, nil, nil, err
	}
	if wantsIdempotency(c) {
		hash = requestHash(p, form.fileHashes()...)
	}
	if stored, err = s.storeFiles(c, form.files); err != nil {
		return nil, nil, nil, err
	}
	p.Images = append(append([]string{}, form.urls...), urls(stored)...)
	p.Uploads = stored
	return p, hash, stored, nil
}

// decodeMultipartUpdate reads a multipart PATCH request: any of
// product_name, product_description and product_price, and images as in
// decodeMultipartCreate. Any image part replaces the product's images; an
// empty product_image_urls value alone clears them.
func (s *Server) decodeMultipartUpdate(c *gin.Context) (upd productd.ProductUpdate, stored []productd.Upload, err error) {
	release, err := s.acquireUpload()
	if err != nil {
		return upd, nil, err
	}
	defer release()
	form, err := s.readMultipart(c, "product_name", "product_description", "product_price")
	if err != nil {
		return upd, nil, err
	}
	defer form.close()
	if v, ok := form.value("product_name"); ok {
		upd.Name = &v
	}
	if v, ok := form.value("product_description"); ok {
		upd.Description = &v
	}
	if v, ok := form.value("product_price"); ok {
		price, err := productd.ParsePrice(v)
		if err != nil {
			return upd, nil, err
		}
		upd.Price = &price
	}
	if form.urlsSent || len(form.files) > 0 {
		images := append([]string{}, form.urls...)
		upd.Images = &images
	}
	if err := upd.Validate(); err != nil {
		return upd, nil, err
	}
	if stored, err = s.storeFiles(c, form.files); err != nil {
		return upd, nil, err
	}
	if upd.Images != nil {
		*upd.Images = append(*upd.Images, urls(stored)...)
		upd.Uploads = stored
	}
	return upd, stored, nil
}

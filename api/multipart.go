package api

import (
	"github.com/gin-gonic/gin"

	"github.com/productd/productd"
)

// decodeMultipartCreate reads a multipart create request: the product fields
// and up to productd.MaxImages image files. It stores the files through
// Config.Originals before the product's transaction and returns their URLs
// as stored, so that the caller can remove them if the transaction fails, and
// the idempotency hash of the request.
//
// Uploads arrive with the image worker; until then multipart is refused.
func (s *Server) decodeMultipartCreate(c *gin.Context) (p *productd.Product, hash []byte, stored []string, err error) {
	return nil, nil, nil, productd.Errorf(productd.EUNSUPPORTED, "multipart/form-data uploads are not enabled on this server")
}

// decodeMultipartUpdate reads a multipart PATCH request; see
// decodeMultipartCreate.
func (s *Server) decodeMultipartUpdate(c *gin.Context) (upd productd.ProductUpdate, stored []string, err error) {
	return upd, nil, productd.Errorf(productd.EUNSUPPORTED, "multipart/form-data uploads are not enabled on this server")
}

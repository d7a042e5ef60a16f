package productd_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/productd/productd"
)

func valid() productd.Product {
	return productd.Product{UserID: 1, Name: "Mug", Description: "A mug", Price: 100, Images: []string{"https://example.com/a.jpg"}}
}

func TestProductValidate(t *testing.T) {
	t.Parallel()
	p := valid()
	if err := p.Validate(); err != nil {
		t.Fatalf("valid product refused: %v", err)
	}
	many := make([]string, productd.MaxImages+1)
	for i := range many {
		many[i] = fmt.Sprintf("http://example.com/%d.jpg", i)
	}
	for name, c := range map[string]struct {
		change func(*productd.Product)
		want   string
	}{
		"no user":          {func(p *productd.Product) { p.UserID = 0 }, "user_id"},
		"no name":          {func(p *productd.Product) { p.Name = " " }, "product_name is required"},
		"long name":        {func(p *productd.Product) { p.Name = strings.Repeat("é", 201) }, "longer than 200"},
		"bad utf-8 name":   {func(p *productd.Product) { p.Name = "\xff" }, "UTF-8"},
		"long description": {func(p *productd.Product) { p.Description = strings.Repeat("d", 5001) }, "longer than 5000"},
		"bad description":  {func(p *productd.Product) { p.Description = "\xff" }, "UTF-8"},
		"negative price":   {func(p *productd.Product) { p.Price = -1 }, "negative"},
		"huge price":       {func(p *productd.Product) { p.Price = productd.MaxPrice + 1 }, "maximum"},
		"too many images":  {func(p *productd.Product) { p.Images = many }, "at most 10"},
		"ftp image":        {func(p *productd.Product) { p.Images = []string{"ftp://x/a"} }, "product_images[0]"},
		"long image":       {func(p *productd.Product) { p.Images = []string{"http://x/" + strings.Repeat("a", 2048)} }, "longer than 2048"},
		"hostless image":   {func(p *productd.Product) { p.Images = []string{"http:///a"} }, "product_images[0]"},
	} {
		p := valid()
		c.change(&p)
		err := p.Validate()
		if productd.ErrorCode(err) != productd.EUNPROCESSABLE || !strings.Contains(productd.ErrorMessage(err), c.want) {
			t.Errorf("%s: error %v, want unprocessable mentioning %q", name, err, c.want)
		}
	}
}

func TestProductUpdateValidate(t *testing.T) {
	t.Parallel()
	var empty productd.ProductUpdate
	if !empty.Empty() || empty.Validate() != nil {
		t.Error("empty update is not empty and valid")
	}
	name, desc, price, images := "", strings.Repeat("d", 5001), productd.Price(-1), []string{"x"}
	for _, u := range []productd.ProductUpdate{{Name: &name}, {Description: &desc}, {Price: &price}, {Images: &images}} {
		if u.Empty() || productd.ErrorCode(u.Validate()) != productd.EUNPROCESSABLE {
			t.Errorf("update %+v: valid", u)
		}
	}
	okName, okDesc, okPrice, okImages := "n", "d", productd.Price(1), []string{"http://x/a"}
	u := productd.ProductUpdate{Name: &okName, Description: &okDesc, Price: &okPrice, Images: &okImages}
	if err := u.Validate(); err != nil {
		t.Errorf("valid update refused: %v", err)
	}
}

func TestProductFilterValidate(t *testing.T) {
	t.Parallel()
	var f productd.ProductFilter
	if err := f.Validate(); err != nil || f.Limit != productd.DefaultListLimit {
		t.Errorf("zero filter: %v, limit %d", err, f.Limit)
	}
	lo, hi := productd.Price(5), productd.Price(1)
	for _, f := range []productd.ProductFilter{
		{MinPrice: &lo, MaxPrice: &hi}, {Limit: -1}, {Name: strings.Repeat("n", 201)},
	} {
		if productd.ErrorCode(f.Validate()) != productd.EINVALID {
			t.Errorf("filter %+v accepted", f)
		}
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	appErr := productd.Errorf(productd.ENOTFOUND, "product %d not found", 7)
	wrapped := fmt.Errorf("find: %w", appErr)
	if productd.ErrorCode(wrapped) != productd.ENOTFOUND || productd.ErrorMessage(wrapped) != "product 7 not found" {
		t.Errorf("wrapped: %q %q", productd.ErrorCode(wrapped), productd.ErrorMessage(wrapped))
	}
	if !strings.Contains(appErr.Error(), "not_found") {
		t.Errorf("Error() = %q", appErr.Error())
	}
	plain := errors.New("password=secret leaked")
	if productd.ErrorCode(plain) != productd.EINTERNAL || strings.Contains(productd.ErrorMessage(plain), "secret") {
		t.Errorf("plain error: %q %q", productd.ErrorCode(plain), productd.ErrorMessage(plain))
	}
	if productd.ErrorCode(nil) != "" || productd.ErrorMessage(nil) != "" {
		t.Error("nil error has a code or message")
	}
}

func TestNameMatchesAnywhere(t *testing.T) {
	t.Parallel()
	for term, want := range map[string]bool{
		"mug": true, "b12": true, "a mug": true, "äöü": true, "日本語": true, "x-abc": true,
		"": false, "mu": false, "a b": false, "x-y-z": false, "%_%": false, "ab cd": false,
	} {
		if got := productd.NameMatchesAnywhere(term); got != want {
			t.Errorf("NameMatchesAnywhere(%q) = %v, want %v", term, got, want)
		}
	}
}

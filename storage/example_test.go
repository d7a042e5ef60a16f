package storage_test

import (
	"crypto/sha256"
	"fmt"
	"log"
	"strings"

	"github.com/productd/productd/storage"
)

// A compressed image's key derives from the product, its images version,
// the image's place and its original's content: the same event handled
// twice writes the same key, and a newer version never shares one.
func ExampleCompressedKey() {
	sum := sha256.Sum256([]byte("the original file's bytes"))
	fmt.Println(storage.CompressedKey(42, 3, 0, sum[:], "jpg"))
	fmt.Println(storage.CompressedKey(42, 4, 0, sum[:], "jpg"))
	fmt.Println(storage.ProductPrefix(42))
	// Output:
	// products/42/3/0-07822c9d6bb58abb.jpg
	// products/42/4/0-07822c9d6bb58abb.jpg
	// products/42/
}

// An uploaded original gets a fresh key under PrefixOriginals before its
// product exists; a type that is not an accepted image is refused.
func ExampleNewOriginalKey() {
	key, err := storage.NewOriginalKey("image/png")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(strings.HasPrefix(key, storage.PrefixOriginals), strings.HasSuffix(key, ".png"))
	_, err = storage.NewOriginalKey("text/html")
	fmt.Println(err)
	// Output:
	// true true
	// productd error: code=unsupported_media_type message=text/html is not an accepted image type
}

// The URLs the store hands out are PublicURL plus the key; KeyFromURL takes
// back only URLs of its own public prefixes. New contacts no server.
func ExampleStore_KeyFromURL() {
	s, err := storage.New(storage.Config{
		Endpoint:  "127.0.0.1:9000",
		Bucket:    "productd",
		PublicURL: "https://cdn.example.com/productd/",
	})
	if err != nil {
		log.Fatal(err)
	}
	u := s.URL("products/42/3/0-07822c9d6bb58abb.jpg")
	fmt.Println(u)
	key, ok := s.KeyFromURL(u)
	fmt.Printf("%q %v\n", key, ok)
	key, ok = s.KeyFromURL("https://cdn.example.com/productd/private/report.csv")
	fmt.Printf("%q %v\n", key, ok)
	// Output:
	// https://cdn.example.com/productd/products/42/3/0-07822c9d6bb58abb.jpg
	// "products/42/3/0-07822c9d6bb58abb.jpg" true
	// "" false
}

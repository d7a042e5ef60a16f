package productd

import (
	"database/sql/driver"
	"fmt"
	"strconv"
	"strings"
)

// MaxPrice is the largest price the catalogue stores: the products table
// keeps prices as numeric(12,2).
const MaxPrice Price = 999_999_999_999

// Price is an amount in cents. Prices are never floats: JSON carries them as
// decimal numbers with at most two decimals, Postgres as numeric(12,2), and
// this type converts between the two without rounding.
type Price int64

// ParsePrice reads a non-negative decimal with at most two decimals, such as
// "100", "100.5" or "100.00". Exponents, signs other than a leading minus, and
// a third decimal are refused with an EUNPROCESSABLE error that says why.
func ParsePrice(s string) (Price, error) {
	neg := strings.HasPrefix(s, "-")
	whole, frac, hasDot := strings.Cut(strings.TrimPrefix(s, "-"), ".")
	if whole == "" || !isDigits(whole) || (hasDot && (frac == "" || !isDigits(frac))) {
		return 0, Errorf(EUNPROCESSABLE, "product_price %q is not a plain decimal number", s)
	}
	if neg {
		return 0, Errorf(EUNPROCESSABLE, "product_price must not be negative")
	}
	if len(frac) > 2 {
		return 0, Errorf(EUNPROCESSABLE, "product_price has more than two decimals")
	}
	whole = strings.TrimLeft(whole, "0")
	if len(whole) > 10 {
		return 0, Errorf(EUNPROCESSABLE, "product_price is over the maximum of %s", MaxPrice)
	}
	units, _ := strconv.ParseInt("0"+whole, 10, 64) // at most 10 digits: cannot overflow
	cents, _ := strconv.ParseInt((frac + "00")[:2], 10, 64)
	return Price(units*100 + cents), nil
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// String formats the price with exactly two decimals.
func (p Price) String() string {
	sign := ""
	if p < 0 {
		sign, p = "-", -p
	}
	return fmt.Sprintf("%s%d.%02d", sign, p/100, p%100)
}

// MarshalJSON writes the price as a JSON number with two decimals.
func (p Price) MarshalJSON() ([]byte, error) {
	return []byte(p.String()), nil
}

// UnmarshalJSON reads a JSON number through ParsePrice.
func (p *Price) UnmarshalJSON(b []byte) error {
	v, err := ParsePrice(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// Value stores the price as a decimal string that Postgres reads as numeric.
func (p Price) Value() (driver.Value, error) {
	return p.String(), nil
}

// Scan reads a numeric column, which drivers hand over as text.
func (p *Price) Scan(src any) error {
	var s string
	switch v := src.(type) {
	case string:
		s = v
	case []byte:
		s = string(v)
	default:
		return fmt.Errorf("scan price: unsupported type %T", src)
	}
	v, err := ParsePrice(s)
	if err != nil {
		return fmt.Errorf("scan price %q: %w", s, err)
	}
	*p = v
	return nil
}

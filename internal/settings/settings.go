// Package settings holds the checks that packages' Config.validate methods
// share: a setting that cannot work is refused with an error that names
// the package, the field and the value.
package settings

import "fmt"

// Field is one numeric setting of a Config: its field name and its value.
type Field[T ~int | ~int64] struct {
	Name  string
	Value T
}

// F returns the Field named name holding value.
func F[T ~int | ~int64](name string, value T) Field[T] {
	return Field[T]{Name: name, Value: value}
}

// NonNegative returns an error naming the first of fields, in order, whose
// value is negative, such as "cache: Config.Timeout is -1s: it must not be
// negative", or nil when there is none. pkg names the package.
func NonNegative[T ~int | ~int64](pkg string, fields ...Field[T]) error {
	for _, f := range fields {
		if f.Value < 0 {
			return fmt.Errorf("%s: Config.%s is %v: it must not be negative", pkg, f.Name, f.Value)
		}
	}
	return nil
}

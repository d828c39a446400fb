package textsafe

import "reflect"

// Escape escapes, in place, every string reachable from v (a pointer):
// for a consumer that draws the strings of a whole value itself (the TUI).
// Names keep matching each other: String is a function of its input.
func Escape(v any) { Walk(v, String) }

// Walk replaces every string reachable from v (a pointer) by f of it:
// struct fields (exported), slice and array elements, map values (keys
// stay), through pointers and interfaces, each pointer once.
func Walk(v any, f func(string) string) {
	walk(reflect.ValueOf(v), f, map[uintptr]bool{})
}

func walk(v reflect.Value, f func(string) string, seen map[uintptr]bool) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() || seen[v.Pointer()] {
			return
		}
		seen[v.Pointer()] = true
		walk(v.Elem(), f, seen)
	case reflect.Interface:
		if !v.IsNil() {
			// The value inside an interface cannot be set: copy, walk, put back.
			e := reflect.New(v.Elem().Type()).Elem()
			e.Set(v.Elem())
			walk(e, f, seen)
			if v.CanSet() {
				v.Set(e)
			}
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				walk(v.Field(i), f, seen)
			}
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			walk(v.Index(i), f, seen)
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(v.MapIndex(k))
			walk(e, f, seen)
			v.SetMapIndex(k, e)
		}
	case reflect.String:
		if v.CanSet() {
			if s := v.String(); s != "" {
				if t := f(s); t != s {
					v.SetString(t)
				}
			}
		}
	}
}

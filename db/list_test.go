package db_test

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/productd/productd"
	"github.com/productd/productd/db"
	"github.com/productd/productd/internal/dbtest"
)

// seedWords make product names: eight of them and a hash, so that every
// term of one or two letters is the start of some word and most of three
// letters or more are rare.
var seedWords = []string{
	"Oak", "Walnut", "Maple", "Birch", "Pine", "Cherry", "Ash", "Teak", "Steel", "Brass",
	"Copper", "Glass", "Marble", "Linen", "Wool", "Cotton", "Leather", "Velvet", "Rattan", "Bamboo",
	"Chair", "Table", "Desk", "Lamp", "Shelf", "Stool", "Bench", "Sofa", "Bed", "Rug",
	"Mirror", "Clock", "Vase", "Bowl", "Mug", "Plate", "Jug", "Tray", "Box", "Basket",
	"Large", "Small", "Round", "Square", "Tall", "Low", "Wide", "Narrow", "Light", "Dark",
	"Red", "Blue", "Green", "Grey", "White", "Black", "Natural", "Polished", "Brushed", "Matte",
	"Nordic", "Classic", "Modern", "Rustic",
}

// seedProducts fills the products table with n products of 10,000 users,
// prices from 0 to 999.99 and names of eight words and a hash, then
// analyzes it. The secondary indexes are built after the rows, which is
// many times faster than keeping them up row by row.
func seedProducts(tb testing.TB, pool *pgxpool.Pool, n int) {
	tb.Helper()
	ctx := context.Background()
	// Building a million rows and their indexes takes longer than the
	// pool's statement_timeout, which is for productd's own statements.
	conn, err := pool.Acquire(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Release()
	exec := func(sql string, args ...any) {
		tb.Helper()
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			tb.Fatalf("%.60s: %v", sql, err)
		}
	}
	exec(`SET statement_timeout = 0`)
	defer exec(`RESET statement_timeout`)
	rows, err := conn.Query(ctx, `SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'products' AND indexname <> 'products_pkey'`)
	if err != nil {
		tb.Fatal(err)
	}
	defs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[struct{ Name, Def string }])
	if err != nil {
		tb.Fatal(err)
	}
	for _, d := range defs {
		exec(`DROP INDEX ` + d.Name)
	}
	exec(`
		INSERT INTO products (user_id, product_name, product_price)
		SELECT 1 + i % 10000,
		       (SELECT string_agg(($2::text[])[1 + (hashint4(i * 8 + k) & 2147483647) % cardinality($2::text[])], ' ')
		          FROM generate_series(0, 7) k) || ' ' || substr(md5(i::text), 1, 8),
		       ((hashint4(i) & 2147483647) % 100000) / 100.0
		FROM generate_series(1, $1::int) i`, n, seedWords)
	for _, d := range defs {
		exec(d.Def)
	}
	exec(`VACUUM ANALYZE products`)
}

// plan runs the list statement of filter under EXPLAIN ANALYZE, planned as
// FindProducts plans it, and returns its nodes, outermost first, each
// with the index it reads, and its execution time in milliseconds.
func plan(tb testing.TB, pool *pgxpool.Pool, filter productd.ProductFilter) ([]string, float64) {
	tb.Helper()
	if err := filter.Validate(); err != nil {
		tb.Fatal(err)
	}
	query, args := db.ListQuery(filter)
	return planOf(tb, pool, query, args...)
}

// planOf runs query under EXPLAIN ANALYZE, planned for its arguments.
func planOf(tb testing.TB, pool *pgxpool.Pool, query string, args ...any) ([]string, float64) {
	tb.Helper()
	var out []byte
	err := pool.QueryRow(context.Background(), `EXPLAIN (ANALYZE, FORMAT JSON) `+query,
		append([]any{pgx.QueryExecModeCacheDescribe}, args...)...).Scan(&out)
	if err != nil {
		tb.Fatalf("explain %s: %v", query, err)
	}
	type node struct {
		Type  string `json:"Node Type"`
		Index string `json:"Index Name"`
		Rel   string `json:"Relation Name"`
		Plans []node `json:"Plans"`
	}
	var doc []struct {
		Plan node    `json:"Plan"`
		Time float64 `json:"Execution Time"`
	}
	if err := json.Unmarshal(out, &doc); err != nil || len(doc) != 1 {
		tb.Fatalf("explain output %s: %v", out, err)
	}
	var nodes []string
	var walk func(n node)
	walk = func(n node) {
		s := n.Type
		if n.Index != "" {
			s += " " + n.Index
		} else if n.Rel != "" {
			s += " " + n.Rel
		}
		nodes = append(nodes, s)
		for _, c := range n.Plans {
			walk(c)
		}
	}
	walk(doc[0].Plan)
	return nodes, doc[0].Time
}

// readsWholeTable reports whether a plan may read every product: a
// sequential scan, or a walk of the primary key with nothing else to narrow
// it.
func readsWholeTable(nodes []string) bool {
	return slices.ContainsFunc(nodes, func(n string) bool {
		return strings.HasPrefix(n, "Seq Scan") || strings.HasSuffix(n, "products_pkey")
	})
}

// A name filter that no trigram narrows matches the start of the name
// through the prefix index, so that a rare one never reads the table; one
// with a trigram still matches anywhere.
func TestListNameFilterUsesAnIndex(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	seedProducts(t, pool, 20000)
	for _, term := range []string{"zq", "Zq", "q", "x-y", "a b", "%_", "Ä"} {
		nodes, _ := plan(t, pool, productd.ProductFilter{Name: term})
		if !slices.Contains(nodes, "Bitmap Index Scan products_name_prefix_idx") && !slices.Contains(nodes, "Index Scan products_name_prefix_idx") {
			t.Errorf("name %q: plan %v does not use products_name_prefix_idx", term, nodes)
		}
		if readsWholeTable(nodes) {
			t.Errorf("name %q: plan %v reads the whole table", term, nodes)
		}
	}
	for _, term := range []string{"zqx", "ZQX", "9f3e1"} {
		nodes, _ := plan(t, pool, productd.ProductFilter{Name: term})
		if !slices.Contains(nodes, "Bitmap Index Scan products_name_trgm_idx") {
			t.Errorf("name %q: plan %v does not use products_name_trgm_idx", term, nodes)
		}
	}
}

// What the name filter matches: a term with three letters or digits in a
// row anywhere in the name, a shorter one at its start, both without
// regard to case, and LIKE's wildcards only as themselves.
func TestListNameFilterMatches(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	svc := db.NewProductService(pool)
	for _, name := range []string{"Laptop", "Flat lamp", "la%ptop", "Ärmel", "ab", "A b c", "x_y"} {
		p := &productd.Product{UserID: 1, Name: name, Price: 100}
		if _, err := svc.CreateProduct(context.Background(), p, nil); err != nil {
			t.Fatal(err)
		}
	}
	for term, want := range map[string]string{
		"la":   "Laptop la%ptop",
		"LA":   "Laptop la%ptop",
		"lap":  "Laptop",
		"LAM":  "Flat lamp",
		"la%":  "la%ptop",
		"ä":    "Ärmel",
		"ärm":  "Ärmel",
		"a b":  "A b c",
		"x_":   "x_y",
		"x":    "x_y",
		"b":    "",
		"ptop": "Laptop la%ptop",
	} {
		got, err := svc.FindProducts(context.Background(), productd.ProductFilter{Name: term})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, p := range got {
			names = append(names, p.Name)
		}
		if strings.Join(names, " ") != want {
			t.Errorf("name %q matches %q, want %q", term, names, want)
		}
	}
}

// BenchmarkListQueries measures each kind of list query at a million
// products (LIST_BENCH_ROWS), against the cheapest list there is, a deep
// page of the primary key, measured in the same run: "x_pk_page" is how
// many times that page each one costs. Each logs its plan. The last one is
// the substring search that a name of two letters was before it matched
// the start of names.
func BenchmarkListQueries(b *testing.B) {
	pool := dbtest.NewPool(b)
	rows := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("LIST_BENCH_ROWS")); err == nil && v > 0 {
		rows = v
	}
	seedProducts(b, pool, rows)
	svc := db.NewProductService(pool)
	ctx := context.Background()
	userID, minPrice, maxPrice := int64(4242), productd.Price(50000), productd.Price(50050)
	// A rare term: five characters of one product's hash.
	var rare string
	if err := pool.QueryRow(ctx, `SELECT substr(md5('777'), 2, 5)`).Scan(&rare); err != nil {
		b.Fatal(err)
	}
	cases := []struct {
		name   string
		filter productd.ProductFilter
	}{
		{"pk_page", productd.ProductFilter{AfterID: int64(rows / 2)}},
		{"user_id", productd.ProductFilter{UserID: &userID}},
		{"price_range", productd.ProductFilter{MinPrice: &minPrice, MaxPrice: &maxPrice}},
		{"name_rare_5", productd.ProductFilter{Name: rare}},
		{"name_common_word", productd.ProductFilter{Name: "walnut"}},
		{"name_3_nowhere", productd.ProductFilter{Name: "zqx"}},
		{"name_3_common", productd.ProductFilter{Name: "oak"}},
		{"name_3_common_deep", productd.ProductFilter{Name: "oak", AfterID: int64(rows * 9 / 10)}},
		{"name_2_nowhere", productd.ProductFilter{Name: "zq"}},
		{"name_2_prefix", productd.ProductFilter{Name: "ch"}},
		{"name_1_prefix", productd.ProductFilter{Name: "b"}},
		{"name_1_prefix_deep", productd.ProductFilter{Name: "b", AfterID: int64(rows * 9 / 10)}},
		{"name_no_trigram", productd.ProductFilter{Name: "a b"}},
		{"user_price_name", productd.ProductFilter{UserID: &userID, MinPrice: &minPrice, Name: "oak"}},
	}
	var ceiling float64
	report := func(b *testing.B, name string, n int) {
		perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		if name == "pk_page" {
			ceiling = perOp
		}
		b.ReportMetric(perOp/1e6, "ms/query")
		b.ReportMetric(float64(n), "rows")
		if ceiling > 0 {
			b.ReportMetric(perOp/ceiling, "x_pk_page")
		}
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			nodes, ms := plan(b, pool, tc.filter)
			b.Logf("%s: %.2f ms under EXPLAIN ANALYZE: %s", tc.name, ms, strings.Join(nodes, " > "))
			var n int
			for b.Loop() {
				got, err := svc.FindProducts(ctx, tc.filter)
				if err != nil {
					b.Fatal(err)
				}
				n = len(got)
			}
			report(b, tc.name, n)
		})
	}
	// What a name of two letters cost when every name filter was a
	// substring search: no trigram narrows it, so it reads the table.
	b.Run("before_name_2_substring", func(b *testing.B) {
		const query = `SELECT id FROM products WHERE id > $1 AND product_name ILIKE $2 ORDER BY id LIMIT $3`
		args := []any{0, "%zq%", productd.DefaultListLimit + 1}
		nodes, ms := planOf(b, pool, query, args...)
		b.Logf("before_name_2_substring: %.2f ms under EXPLAIN ANALYZE: %s", ms, strings.Join(nodes, " > "))
		var n int
		for b.Loop() {
			rows, err := pool.Query(ctx, query, append([]any{pgx.QueryExecModeCacheDescribe}, args...)...)
			if err != nil {
				b.Fatal(err)
			}
			ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
			if err != nil {
				b.Fatal(err)
			}
			n = len(ids)
		}
		report(b, "before_name_2_substring", n)
	})
}

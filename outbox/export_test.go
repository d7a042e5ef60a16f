package outbox

import "time"

// Query is a statement of this package with sample arguments.
type Query struct {
	SQL  string
	Args []any
}

// IndexedQueries are the statements that must stay cheap however many rows
// the outbox holds, for a test to check their plans.
func IndexedQueries() map[string]Query {
	return map[string]Query{
		"stats":            {statsSQL, nil},
		"list dead":        {listDeadSQL, []any{0, 50}},
		"requeue all dead": {requeueAllSQL, []any{requeueBatch}},
		"delete published": {deletePublishedSQL, []any{time.Now().Add(-time.Hour), 1000}},
		"claim":            {claimSQL, []any{500}},
	}
}

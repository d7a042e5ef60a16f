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
	requeueAll, _ := requeueMatchingSQL(DeadFilter{})
	requeueType, typeArgs := requeueMatchingSQL(DeadFilter{EventType: "product.created"})
	return map[string]Query{
		"stats":              {statsSQL, []any{CountCap + 1}},
		"created rate":       {createdRateSQL, []any{RateSample, RateWindow.Microseconds()}},
		"published rate":     {publishedRateSQL, []any{RateSample, RateWindow.Microseconds()}},
		"retry groups":       {retryGroupsSQL, []any{CountCap}},
		"next retries":       {nextRetriesSQL, []any{20}},
		"product entries":    {productEntriesSQL, []any{1, 50}},
		"requeue all dead":   {requeueAll, []any{requeueBatch}},
		"requeue dead typed": {requeueType, append([]any{requeueBatch}, typeArgs...)},
		"delete published":   {deletePublishedSQL, []any{time.Now().Add(-time.Hour), 1000}},
		"claim":              {claimSQL, []any{500}},
	}
}

// Pending reports whether a Wake waits for n's next notification.
func Pending(n *Notifier) bool { return len(n.kick) == 1 }

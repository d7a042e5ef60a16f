// Package ops is the console's model: what an operator reads about the
// outbox, the relays, the broker, the image pipeline, the cache and one
// product's story, and the actions an operator takes on them, each recorded
// with who took it. The HTTP page and JSON (package ops/web) and the
// `productd ops` command show and call the same Console.
//
// Every read stays cheap at millions of rows: counts stop at
// outbox.CountCap and become the planner's estimates above it, rates read
// the newest rows through an index, and figures the broker reports (queue
// depths and message rates from its management API) are its own samples.
// Each figure says whether it is an estimate.
package ops

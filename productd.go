// Package productd holds the domain of the product catalogue: the Product
// type and its rules, the events that announce changes to it, and the
// application errors that every other package returns.
//
// It depends on nothing but the standard library so that every package may
// import it. The packages beside it implement the interfaces declared here
// against one outside dependency each: db (Postgres), api (HTTP), relay
// (River and RabbitMQ), imageworker (RabbitMQ and MinIO), cache (Redis).
package productd

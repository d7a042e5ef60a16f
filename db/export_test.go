package db

// ListQuery exposes the list statement to the tests that read its plans.
var ListQuery = listQuery

// Unavailable exposes the classification of database errors to the tests
// that feed it errors a real server returned.
var Unavailable = unavailable

package db

// ListQuery exposes the list statement to the tests that read its plans.
var ListQuery = listQuery

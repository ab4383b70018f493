package archivesite

// Sanitize is sanitize, for the tests of package archivesite_test.
var Sanitize = sanitize

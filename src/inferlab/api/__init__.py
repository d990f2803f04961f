"""HTTP routes and the request-path plumbing they share."""

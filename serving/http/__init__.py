"""HTTP plumbing: reading bodies, routing, endpoints, and turning every answer into a response."""

"""Finding what works across runs: params columns, the query language, parallel coordinates, the search API."""

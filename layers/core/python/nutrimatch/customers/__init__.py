"""A vendor's customers (records) and their health profiles (health): the use cases the API calls."""

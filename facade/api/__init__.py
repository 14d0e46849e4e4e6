"""HTTP edge of the facade: dependencies, error mapping and one router per noun."""

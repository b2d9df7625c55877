"""HTTP clients of Fourthwall and Luigi's Box, and the table that classifies their errors."""

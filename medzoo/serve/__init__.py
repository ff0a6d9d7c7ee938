"""S2's clinician service: `medzoo serve` (web pages + JSON API), the prediction log, review, and `medzoo retrain`."""

"""S3: CT slice sequences (CT-ICH adapter, windowed sequences, the two models' pipeline and demo)."""

"""S5: two-stage whole-slide pathology (tiling, STRIP AI adapter, patient study, pipeline, demo)."""

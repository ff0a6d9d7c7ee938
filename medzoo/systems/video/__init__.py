"""S1: deepfake video classification, a per-frame CNN under an LSTM (public sets, pipeline, demo)."""

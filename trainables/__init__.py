"""One trial: data, model, sampling schemes, engine (pure torch) and the thin Ray adapter."""

"""The application layer: pipelines that join the library (data, metrics, engine, generators,
segmentation, reports) into the jobs the CLI runs."""

"""report: rendering only (tables, Markdown documents, plots)."""

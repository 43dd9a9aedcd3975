"""The `pagerag` command line: a thin click layer over index/ and rag/."""

"""`pagerag serve`: a local web app over the index — search, page viewer with evidence boxes, chat,
conversations, status. Presentation only: retrieval, answers and evidence come from rag/.

Every HTML page is also JSON at the same URL plus `.json` (datasette's habit), made by the same view.
"""

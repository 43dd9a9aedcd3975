"""The SQLite layout of an index folder, and its format version (checked on open)."""

FORMAT_VERSION = 2
DB_NAME = "index.db"

# pages of a finished document that could not be read (a page that timed out, killed its reader, or holds
# corrupt data): the document is indexed without them, "partly indexed". A build does not read them again
# unless the file changes or `--retry-failed` asks. Created on a writer's open when absent (indexes made
# before it); readers treat its absence as no failures.
FAILED_PAGES = """
CREATE TABLE IF NOT EXISTS failed_pages (
    doc_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    page_no INTEGER NOT NULL,           -- 1-based; never also a row of pages
    reason TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (doc_id, page_no)
);
"""

SCHEMA = """
-- meta keys: format_version, created, embed_model, embed_dim,
-- vector_index (JSON index.vector_layout.Layout: the FAISS cache's kind and parameters)
-- meta also holds the vector stamp, updated in every transaction that adds or removes chunks:
--   vectors_uuid (this database's identity), vectors_gen (+1 per change),
--   vectors_sum (order-free checksum of every (chunk id, vector); see vector_values.digest)
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

CREATE TABLE IF NOT EXISTS documents (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,          -- absolute, as indexed
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    kind TEXT NOT NULL,                 -- pdf | tiff | image
    title TEXT NOT NULL,
    n_pages INTEGER NOT NULL,
    status TEXT NOT NULL,               -- indexing | done (with failed_pages rows: partly indexed)
    indexed_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS pages (
    id INTEGER PRIMARY KEY,
    doc_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    page_no INTEGER NOT NULL,           -- 1-based
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    source TEXT NOT NULL,               -- text-layer | tesseract | rapidocr | none
    text TEXT NOT NULL,
    words BLOB NOT NULL,                -- index/wordpack.py: boxes (page fractions), confidences, lines
    ocr_conf REAL,                      -- mean word confidence, NULL for text layers
    rotation INTEGER NOT NULL DEFAULT 0, -- degrees clockwise that turn the file's image upright (OCR
                                        -- orientation detection); width, height and words are of the upright page
    lang TEXT,                          -- OCR language(s), Tesseract style ('deu+eng'); NULL for text layers
    caption TEXT,
    UNIQUE (doc_id, page_no)
);

CREATE TABLE IF NOT EXISTS chunks (
    -- also the FAISS id. AUTOINCREMENT: an id is never reused, so a FAISS file written
    -- before a crash can never hold another chunk's vector under a live id
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    page_id INTEGER NOT NULL REFERENCES pages(id) ON DELETE CASCADE,
    ord INTEGER NOT NULL,
    kind TEXT NOT NULL DEFAULT 'text',  -- text | caption
    text TEXT NOT NULL,
    word_start INTEGER NOT NULL,
    word_end INTEGER NOT NULL,
    box TEXT,                           -- JSON [x0, y0, x1, y1] page fractions, NULL for captions
    vector BLOB NOT NULL                -- float16 x dim, unit length: the source of truth for FAISS
);
CREATE INDEX IF NOT EXISTS chunks_page ON chunks(page_id);
CREATE INDEX IF NOT EXISTS documents_sha ON documents(sha256);  -- a moved file's pages are copied, not read
CREATE INDEX IF NOT EXISTS pages_doc ON pages(doc_id);

-- lexical search ranks whole pages (rowid = pages.id): bm25 over a page finds a receipt
-- whose company, date and total sit in different passages
CREATE VIRTUAL TABLE IF NOT EXISTS pages_fts USING fts5(
    title, text, caption, tokenize = 'porter unicode61 remove_diacritics 2');

-- page structure a question may name (index/structure.py): ('page', '14'), ('printed', '12'),
-- ('figure', '10'), ('table', '2'), ('appendix', 'e'), ('position', 'last'), ...
CREATE TABLE IF NOT EXISTS page_facts (
    page_id INTEGER NOT NULL REFERENCES pages(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    UNIQUE (kind, value, page_id)       -- a rowid table: SQLite 3.40's quick_check misreads this
);                                      -- key as NULLs in a WITHOUT ROWID table
CREATE INDEX IF NOT EXISTS page_facts_page ON page_facts(page_id);

CREATE TABLE IF NOT EXISTS skipped (
    path TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    is_error INTEGER NOT NULL,          -- 1: a file we should read but could not; 0: not ours (unsupported)
    at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS captions (
    key TEXT PRIMARY KEY,               -- sha256 of the page image pixels + model
    caption TEXT NOT NULL
);
""" + FAILED_PAGES

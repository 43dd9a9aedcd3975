"""Every text pagerag sends to a model or says on a model's behalf. Data, not code."""

# Leads the last user turn. Llama 3.2-Vision refuses a system turn beside images, so the
# instructions travel in the user turn for every model alike.
ANSWER_INSTRUCTIONS = (
    "You answer questions about the user's scanned documents. Use only the pages below: "
    "the image(s) at the start of this conversation and the text read from each page. "
    "Cite the pages you used as [1], [2], ... right after the statement they support. "
    "If the pages do not contain the answer, say plainly that the pages do not contain it, "
    "and do not guess or use outside knowledge. Answer concisely."
)

EVIDENCE_HEADER = "Pages:"
# n, file name, page number, whether its image is shown, the page's text
EVIDENCE_ITEM = "[{n}] {name}, page {page}{image_note}:\n{text}"
IMAGE_NOTE = " (image {i} above)"
NO_TEXT = "(no text could be read from this page)"
TEXT_CUT = " […]"

QUESTION = "Question: {question}"

# a follow-up is retrieved with the previous question folded in: "and in March?" -> "... February? and in March?"
FOLLOW_UP_QUERY = "{previous} {question}"

# Said without calling the model when retrieval finds nothing relevant.
# Said when neither signal of the search finds the question's subject (rag/support.py): the passages'
# meaning (cosine) and the question's words on the pages (each weighed by its rarity).
ABSTAIN = (
    "The indexed pages do not seem to contain this: I searched {n_pages} page(s) for {query}. By meaning, "
    "the best match scored {best:.2f}, below the relevance threshold {threshold:.2f} (--min-score); by words, {words}."
)
ABSTAIN_FOLLOW_UP = "{question!r} (with the previous question)"
ABSTAIN_NO_WORDS = "the question has no word to look for"
ABSTAIN_WORDS_NONE = "no page found holds its distinctive words ({words})"
ABSTAIN_WORDS_SOME = ("the best page holds {found} but not {missing}: {share:.0%} of the question's word weight, "
                      "below {threshold:.0%} (--min-lexical)")
ABSTAIN_EMPTY = "The index at {index} has no pages yet: build it with `pagerag index build PATH`."

CAPTION = (
    "Describe this page in two or three sentences for a search index: what kind of document it is "
    "(letter, invoice, receipt, form, slide, chart, photo, ...), what any charts, tables or photos show, "
    "and its key entities (names, organisations, dates, amounts). Plain text, no preamble."
)

EMPTY_ANSWER = ("the model '{model}' answered with no text; try again, or another model "
                "(-m MODEL, --backend)")

"""One grounded turn: retrieve pages, show them to the model, check its citations, remember the turn.

    assistant = Assistant(Index.open(folder), backend, ConversationStore(folder))
    answer = assistant.ask("What is the total on the ACME invoice?", on_text=print)
    answer.text, answer.sources, answer.conversation_id

The prompt (transformers chat format): the evidence images go first in the first user
turn (Llama 3.2-Vision lets text after an image attend to it, and text placed before
the first image leaks; consecutive images inform everything after them); earlier turns
follow as plain question/answer pairs; the last user turn carries the instructions, the
pages' text labelled [1]..[k] and the question.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Callable

from index.store import Index

from . import prompts
from .backends import Backend, GenerationOptions, ModelUnavailable
from .citations import check
from .conversations import ConversationStore, Turn
from .evidence import Evidence, Source, gather
from .retrieve import Hit, Retriever
from .support import MIN_LEXICAL, MIN_SCORE, Support, measure

HISTORY_TURNS = 6  # earlier turns resent to the model


@dataclass
class AskSettings:
    k: int = 5
    images: int = 1
    min_score: float = MIN_SCORE  # abstain when the best passage's cosine is below this ...
    min_lexical: float = MIN_LEXICAL  # ... and no retrieved page holds this share of the question's word weight
    mode: str = "hybrid"
    within: list[str] | None = None  # files or folders to search within; None: the whole index
    generation: GenerationOptions = field(default_factory=GenerationOptions)


@dataclass
class Answer:
    question: str
    query: str
    text: str
    sources: list[Source]
    cited: list[int] = field(default_factory=list)
    removed_citations: list[int] = field(default_factory=list)
    abstained: bool = False
    support: Support | None = None  # what each signal found for the question (rag/support.py)
    model_error: str | None = None  # the model could not be used; sources hold the evidence found
    truncated: bool = False  # the model stopped at max_new_tokens: the answer is cut off
    conversation_id: str | None = None
    turn: int | None = None
    backend: str | None = None
    model: str | None = None
    retrieval_seconds: float = 0.0
    generation_seconds: float = 0.0


# control characters a model (or a server) may send: NUL, escape sequences that would drive the terminal,
# carriage returns that overwrite the line, C1 controls, and the bidi embedding/override/isolate controls that
# make a terminal or page show text in another order than it is ("Total \u202e24" shows as "Total 42");
# tab and newline stay
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(piece: str) -> str:
    """A piece of model output as shown and stored: control characters other than tab and newline, and bidi
    overrides, dropped ("\\r\\n" becomes "\\n"). printable("Total\\x00 \\x1b[31m5\\x1b[0m") -> "Total [31m5[0m"."""
    return _CONTROL.sub("", piece.replace("\r\n", "\n"))


def retrieval_queries(question: str, history: list[Turn]) -> list[tuple[str, float]]:
    """What a turn searches for, with weights: a follow-up also with the previous question folded in,
    so 'and who was absent?' keeps its topic."""
    if not history:
        return [(question, 1.0)]
    folded = prompts.FOLLOW_UP_QUERY.format(previous=history[-1].question, question=question)
    return [(question, 1.0), (folded, 1.0)]


def build_messages(history: list[Turn], evidence: Evidence, question: str) -> list[dict]:
    images = [{"type": "image"} for _ in evidence.images]
    last = "\n\n".join([prompts.ANSWER_INSTRUCTIONS, evidence.text(), prompts.QUESTION.format(question=question)])
    messages: list[dict] = []
    for turn in history[-HISTORY_TURNS:]:
        messages.append({"role": "user", "content": [{"type": "text", "text": turn.question}]})
        messages.append({"role": "assistant", "content": [{"type": "text", "text": turn.answer}]})
    messages.append({"role": "user", "content": [{"type": "text", "text": last}]})
    messages[0]["content"] = images + messages[0]["content"]
    return messages


class Assistant:
    def __init__(self, index: Index, backend: Backend | None, store: ConversationStore,
                 settings: AskSettings | None = None, retriever: Retriever | None = None):
        self.index = index
        self.backend = backend
        self.store = store
        self.settings = settings or AskSettings()
        self.retriever = retriever or Retriever(index)

    def ask(self, question: str, conversation_id: str | None = None,
            on_text: Callable[[str], None] | None = None) -> Answer:
        history = self.store.get(conversation_id).turns if conversation_id else []
        queries = retrieval_queries(question, history)
        query = queries[-1][0]
        t0 = time.perf_counter()
        hits = self.retriever.search_combined(queries, k=self.settings.k, mode=self.settings.mode,
                                             within=self.settings.within)
        answer = Answer(question, query, "", [], backend=getattr(self.backend, "name", None),
                        model=getattr(self.backend, "model", None))
        answer.support = measure(self.retriever, query, hits, self.settings.within, question) if hits else None
        abstain = self.abstention(query, hits, answer.support, asked=question)
        if abstain:
            answer.text, answer.abstained = abstain, True
            answer.sources = [Source(n, h.path, h.page, h.title, h.snippet, False, h.score) for n, h in enumerate(hits, 1)]
        else:
            searched = time.perf_counter() - t0
            options, answer.model_error = self.ready()  # first: pages are rendered only for a model that will see them
            t1 = time.perf_counter()
            evidence = gather(self.index, hits, 0 if answer.model_error else self.settings.images)
            answer.sources = evidence.sources
            answer.retrieval_seconds = searched + time.perf_counter() - t1
            if answer.model_error:
                return answer
            try:
                t1 = time.perf_counter()
                pieces = []
                for piece in self.backend.stream(build_messages(history, evidence, question), evidence.images,
                                                 options):
                    piece = printable(piece)
                    if not piece:
                        continue
                    pieces.append(piece)
                    if on_text:
                        on_text(piece)
                answer.generation_seconds = time.perf_counter() - t1
                answer.truncated = getattr(self.backend, "finish_reason", None) == "length"
            except ModelUnavailable as e:
                answer.model_error = str(e)
                return answer
            answer.text, answer.cited, answer.removed_citations = check(
                "".join(pieces).strip(), {s.n for s in evidence.sources})
            if not answer.text:  # nothing (or only citations we removed): not an answer, not a turn to keep
                answer.model_error = prompts.EMPTY_ANSWER.format(model=answer.model or answer.backend)
                return answer
        answer.retrieval_seconds = answer.retrieval_seconds or time.perf_counter() - t0
        self.remember(answer, conversation_id)
        return answer

    def ready(self) -> tuple[GenerationOptions | None, str | None]:
        """(the options to stream with, None), or (None, why no model can answer): the backend loaded
        (or, for a server, reached) before any page is rendered for it."""
        if self.backend is None:
            return None, "no model backend configured"
        try:
            return self.backend.ready(self.settings.generation), None
        except ModelUnavailable as e:
            return None, str(e)

    def abstention(self, query: str, hits: list[Hit], support: Support | None = None,
                   asked: str | None = None) -> str | None:
        """The message to give instead of an answer when neither signal found the question's subject among
        `hits` (`support`, measured when not given: rag/support.py), else None. `asked`: the question as the
        user put it, quoted instead of `query` when a follow-up's search folded the previous one in."""
        if not hits and not self.index.counts()["pages"]:
            return prompts.ABSTAIN_EMPTY.format(index=self.index.folder)
        support = support or measure(self.retriever, query, hits, self.settings.within)
        s = self.settings
        if hits and support.supported(s.min_score, s.min_lexical):
            return None
        shown = repr(query) if asked in (None, query) else prompts.ABSTAIN_FOLLOW_UP.format(question=asked)
        return prompts.ABSTAIN.format(n_pages=self.pages_searched(), query=shown, best=support.dense,
                                      threshold=s.min_score, words=self.words_found(support))

    def words_found(self, support: Support) -> str:
        """The abstention's account of the lexical side: which of the question's words the pages hold."""
        if not support.words:
            return prompts.ABSTAIN_NO_WORDS
        if not support.found:
            return prompts.ABSTAIN_WORDS_NONE.format(words=", ".join(support.words[:4]))
        missing = [w for w in support.words if w not in support.found]
        return prompts.ABSTAIN_WORDS_SOME.format(found=", ".join(support.found[:4]), missing=", ".join(missing[:4]),
                                                 share=support.lexical, threshold=self.settings.min_lexical)

    def pages_searched(self) -> int:
        """The pages a search covers: those of the documents under `within` (--in), else the whole index."""
        if not self.settings.within:
            return self.index.counts()["pages"]
        docs = self.index.documents_under(self.settings.within)
        return sum(self.index.db.execute(
            f"SELECT count(*) FROM pages WHERE doc_id IN ({','.join('?' * len(part))})", part).fetchone()[0]
            for part in (docs[i:i + 500] for i in range(0, len(docs), 500)))

    def remember(self, answer: Answer, conversation_id: str | None) -> None:
        turn = Turn(answer.question, answer.query, answer.text,
                    [{"n": s.n, "path": s.path, "page": s.page, "image": s.image, "score": s.score}
                     for s in answer.sources],
                    answer.removed_citations, answer.abstained, answer.backend, answer.model,
                    retrieval_seconds=round(answer.retrieval_seconds, 4),
                    generation_seconds=round(answer.generation_seconds, 4))
        if conversation_id:
            cid, answer.turn = conversation_id, self.store.add_turn(conversation_id, turn)
        else:
            cid, answer.turn = self.store.start(answer.question, turn)
        answer.conversation_id = cid

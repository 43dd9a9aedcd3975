// The chat view: POST /chat/ask, read the newline-delimited JSON events as they stream in,
// then replace the streamed text with the checked answer whose [n] link to the cited pages.
(function () {
  const root = document.getElementById("chat");
  const form = document.getElementById("ask");
  const turns = document.getElementById("turns");
  const box = form.querySelector("textarea");
  let cid = root.dataset.cid || null;

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function colour(n) {
    const p = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#785ef0", "#a03c3c"];
    return p[(n - 1) % p.length];
  }

  function citedHtml(container, text, links) {
    // text -> nodes, "[1, 2]" -> links in the citation colours; never innerHTML with model output
    container.textContent = "";
    const re = /\[(\s*\d+(?:\s*[,;]\s*\d+)*\s*)\]/g;
    let last = 0, m;
    while ((m = re.exec(text)) !== null) {
      container.append(text.slice(last, m.index), "[");
      m[1].match(/\d+/g).forEach((num, i) => {
        if (i) container.append(", ");
        const url = links[num];
        const a = el(url ? "a" : "span", "cite", num);
        if (url) a.href = url;
        a.style.setProperty("--c", colour(+num));
        container.append(a);
      });
      container.append("]");
      last = re.lastIndex;
    }
    container.append(text.slice(last));
  }

  function withCode(container, text) {
    // a message whose `quoted commands` show as code, as the server's pages show them; text nodes only
    container.textContent = "";
    text.split("`").forEach((piece, i, all) => {
      const quoted = i % 2 === 1 && i < all.length - 1;
      container.append(quoted ? el("code", null, piece) : (i % 2 === 1 ? "`" + piece : piece));
    });
  }

  function sourcesList(sources) {
    const ul = el("ul", "sources");
    sources.forEach((s) => {
      const li = el("li", s.cited ? "cited" : "uncited");
      const a = el("a");
      a.href = s.url;
      a.style.setProperty("--c", colour(s.n));
      if (s.thumbnail) { const img = el("img"); img.src = s.thumbnail; img.alt = ""; a.append(img); }
      a.append(el("span", "n", String(s.n)), " " + s.path.split("/").pop() + ", page\u00a0" + s.page);
      li.append(a);
      ul.append(li);
    });
    return ul;
  }

  function finish(turn, answerBox, ev) {
    answerBox.classList.remove("pending");
    if (ev.model_error) {
      answerBox.classList.add("error");
      withCode(answerBox, ev.model_error);
      const note = el("div", "notice");
      note.append(el("b", null, "Evidence found:"), " the pages below hold what the question asks about; open one to see the matching words boxed.");
      turn.append(note);
    } else {
      if (ev.abstained) answerBox.classList.add("abstained");
      citedHtml(answerBox, ev.answer, ev.links);
    }
    if (ev.sources.length) turn.append(sourcesList(ev.sources));
    if (ev.conversation_id && ev.conversation_id !== cid) {
      cid = ev.conversation_id;
      history.replaceState(null, "", "/chat?cid=" + cid);
    }
  }

  async function ask(question) {
    const turn = el("div", "turn");
    turn.append(el("div", "q", question));
    const answerBox = el("div", "a pending");
    turn.append(answerBox);
    turns.append(turn);
    turn.scrollIntoView({ block: "end" });
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      const resp = await fetch("/chat/ask", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ question: question, cid: cid }),
      });
      if (!resp.ok) throw new Error((await resp.json()).error || resp.statusText);
      const reader = resp.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "", streamed = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let nl;
        while ((nl = buffer.indexOf("\n")) >= 0) {
          const ev = JSON.parse(buffer.slice(0, nl));
          buffer = buffer.slice(nl + 1);
          if (ev.type === "text") { streamed += ev.text; answerBox.textContent = streamed; }
          else if (ev.type === "done") finish(turn, answerBox, ev);
          else if (ev.type === "error") throw new Error(ev.error);
        }
      }
    } catch (err) {
      answerBox.classList.remove("pending");
      answerBox.classList.add("error");
      withCode(answerBox, "Error: " + err.message);
    } finally {
      button.disabled = false;
      turn.scrollIntoView({ block: "end" });
    }
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const q = box.value.trim();
    if (!q) return;
    box.value = "";
    ask(q);
  });
  box.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); form.requestSubmit(); }
  });
})();

"""Exporting a sentence-transformers model's transformer to ONNX, once, and proving it equal.

    export_onnx("sentence-transformers/all-MiniLM-L6-v2", folder, [cache_dir, index_dir])
    # -> the folder now holding model.onnx + pipeline.json, or NotExportable("why")

Only pipelines that `OnnxEmbedder` replays exactly are exported: modules.json is
[Transformer, Pooling(cls | mean | max | mean_sqrt_len)] with an optional Normalize, the
tokenizer has a tokenizer.json, and no prompt is prepended by default. The export is kept
only when its vectors match sentence-transformers' on probe texts (short, long past
max_seq_length, unicode, empty, padded in one batch) with cosine >= MIN_COSINE.
Needs torch, transformers, sentence-transformers and onnx: a build-time cost, paid once.

`int8_graph` derives the int8 graph that index builds embed passages with (onnx and numpy
only, a few seconds once per export).
"""
from __future__ import annotations

import inspect
import json
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path

from .embed_onnx import INT8_FILE, INT8_UNSUPPORTED_FILE, ONNX_FILE, PIPELINE_FILE, OnnxEmbedder
from .embed_torch import Embedder

MIN_COSINE = 0.99999
# the int8 graph is kept only if its vectors stay this close to fp32's on passage-like probes
# (MiniLM: mean ~0.997, min ~0.993 on eval passages; per-tensor int8 activations gave min 0.96)
MIN_INT8_COSINE = 0.99
POOLINGS = {"pooling_mode_cls_token": "cls", "pooling_mode_mean_tokens": "mean",
            "pooling_mode_max_tokens": "max", "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len"}
OTHER_POOLINGS = ("pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken")
PROBES = ["", " ", "a", "Invoice total: $1,234.56 due 2023-12-01",
          "Ünïcödé — naïve café, 東京都, Ελληνικά, emoji 🙂 and ligatures ﬁ ﬂ",
          " ".join(f"word{i} of a long passage that runs past the model's window" for i in range(120)),
          "What did the board decide about the parking lot?"]


log = logging.getLogger(__name__)


class NotExportable(Exception):
    """The model's pipeline is not one the ONNX encoder replays, or the export does not reproduce it."""


def read_pipeline(folder: Path) -> dict:
    """What OnnxEmbedder needs besides the graph, from the model folder's config files."""
    try:
        modules = json.loads((folder / "modules.json").read_text())
    except (OSError, ValueError):
        raise NotExportable("no readable modules.json") from None
    kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in modules]
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        raise NotExportable(f"modules {kinds} (expected Transformer, Pooling[, Normalize])")
    if modules[0].get("path", "") not in ("", "."):
        raise NotExportable("the transformer lives in a subfolder")
    if not (folder / "tokenizer.json").is_file():
        raise NotExportable("no tokenizer.json (a fast tokenizer is needed)")
    pooling = _json(folder / modules[1].get("path", "1_Pooling") / "config.json")
    modes = [POOLINGS[k] for k in POOLINGS if pooling.get(k)]
    if len(modes) != 1 or any(pooling.get(k) for k in OTHER_POOLINGS) or pooling.get("include_prompt") is False:
        raise NotExportable(f"pooling {pooling}")
    st_config = _json(folder / "config_sentence_transformers.json")
    if st_config.get("default_prompt_name"):
        raise NotExportable("a default prompt is prepended")
    return {"do_lower_case": bool(_json(folder / "sentence_bert_config.json").get("do_lower_case", False)),
            "pooling": modes[0]}


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def export_onnx(name: str, folder: Path, targets: list[Path]) -> Path:
    """Export into the first of `targets` that can be written; returns it."""
    pipeline = read_pipeline(folder)
    reference = Embedder(name)
    st = reference.model  # the model exactly as sentence-transformers runs it
    transformer = st[0]
    tokenizer, model = transformer.tokenizer, transformer.auto_model
    if tokenizer.pad_token_id is None:
        raise NotExportable("the tokenizer has no padding token")
    accepted = inspect.signature(model.forward).parameters
    inputs = [n for n in tokenizer(["a b"]).keys() if n in accepted]
    pipeline.update(max_seq_length=int(transformer.max_seq_length), dim=reference.dim, inputs=inputs,
                    pad_id=int(tokenizer.pad_token_id), pad_token=tokenizer.pad_token, source=str(folder))
    last_error: OSError | None = None
    for target in targets:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            work = Path(tempfile.mkdtemp(prefix=".export-", dir=target.parent))
            work.chmod(0o755)
        except OSError as e:
            last_error = e
            continue
        try:
            _export_graph(model, tokenizer, inputs, work / ONNX_FILE)
            (work / PIPELINE_FILE).write_text(json.dumps(pipeline, indent=1))
            _check(OnnxEmbedder(name, folder, work), reference)
            try:
                os.rename(work, target)
            except OSError:
                if not (target / ONNX_FILE).is_file():  # not another process's finished export: a real failure
                    raise
            return target
        except OSError as e:
            last_error = e
        finally:
            shutil.rmtree(work, ignore_errors=True)
    raise NotExportable(f"no writable place for the export ({last_error})")


def _export_graph(model, tokenizer, inputs: list[str], path: Path) -> None:
    import torch

    class TokenEmbeddings(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *args):
            return self.inner(**dict(zip(inputs, args))).last_hidden_state

    try:
        model.set_attn_implementation("eager")  # plain ops trace with dynamic shapes; sdpa's mask logic may not
    except Exception:
        pass
    sample = tokenizer(["a short text", "a longer text, so that the first one is padded"],
                       padding=True, return_tensors="pt")
    axes = {n: {0: "batch", 1: "sequence"} for n in [*inputs, "token_embeddings"]}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(TokenEmbeddings(model.eval()), tuple(sample[n] for n in inputs), str(path),
                              input_names=inputs, output_names=["token_embeddings"], dynamic_axes=axes,
                              opset_version=17, dynamo=False)
        except Exception as e:
            raise NotExportable(f"torch.onnx.export failed: {type(e).__name__}: {str(e)[:200]}") from None
    _weights_apart(path)


def _weights_apart(path: Path) -> None:
    """Move the weights into model.onnx.data beside the graph: onnxruntime maps that file instead of
    copying it (MiniLM: session 0.15 s instead of 0.47 s, peak RSS 107 MiB instead of 187 MiB)."""
    import onnx

    graph = onnx.load(str(path))
    onnx.save_model(graph, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=path.name + ".data", size_threshold=1024)
    (path.parent / (path.name + ".data")).chmod(0o644)


def _check(candidate: OnnxEmbedder, reference: Embedder) -> None:
    """Raise NotExportable unless the ONNX pipeline gives sentence-transformers' vectors, batched and alone."""
    import numpy as np

    want = reference.encode(PROBES)
    got = [candidate.encode(PROBES), np.stack([candidate.encode([t])[0] for t in PROBES])]
    for g in got:
        cos = (g * want).sum(axis=1) / np.maximum(np.linalg.norm(g, axis=1) * np.linalg.norm(want, axis=1), 1e-12)
        if cos.min() < MIN_COSINE:
            raise NotExportable(f"the ONNX vectors differ from sentence-transformers' (cosine {cos.min():.6f})")


INT8_PROBES = [
    "Quarterly revenue rose 12% to $4.2 billion, driven by cloud services; operating margin was 31.5%.",
    "The board approved the capital budget for 2023, including the water treatment plant upgrade.",
    "RECEIPT  Store #0412  12/02/2018 14:33  MILK 2L 3.49  BREAD 2.99  TOTAL 6.48  CASH 10.00  CHANGE 3.52",
    "Figure 3: Distribution of response times (ms) across 1,024 trials; error bars show one standard deviation.",
]


def int8_graph(embedder: OnnxEmbedder) -> Path | None:
    """The int8 graph of `embedder`'s export (INT8_FILE beside model.onnx), made now if missing.

    None, with a note, when it cannot be written there or does not reproduce the fp32 vectors
    (cosine >= MIN_INT8_COSINE on the probes): the build then embeds in fp32. A model found
    unfaithful is remembered (INT8_UNSUPPORTED_FILE) and not tried again.
    """
    import numpy as np

    folder = embedder.onnx_dir
    target = folder / INT8_FILE
    if target.is_file():
        return target
    if (folder / INT8_UNSUPPORTED_FILE).is_file():
        return None
    work = folder / f".{INT8_FILE}.{os.getpid()}.tmp"  # beside model.onnx: the weights it shares resolve
    try:
        quantize_int8(folder / ONNX_FILE, work)
        probe = OnnxEmbedder(embedder.name, embedder.folder, folder, threads=1)
        probe.int8, probe._int8_path = True, work
        texts = [*(t for t in PROBES if len(t.split()) >= 3), *INT8_PROBES]  # passages: "" moves to ~0.986
        cos = (probe.encode(texts) * probe.encode(texts, fp32=True)).sum(axis=1)
        if float(np.min(cos)) < MIN_INT8_COSINE:
            (folder / INT8_UNSUPPORTED_FILE).write_text(f"int8 vectors differ from fp32 (cosine {np.min(cos):.4f})\n")
            log.warning("note: embedding model '%s' embeds passages in fp32: its int8 graph moved vectors to "
                        "cosine %.4f", embedder.name, float(np.min(cos)))
            return None
        os.replace(work, target)
        return target
    except Exception as e:  # an optimisation only: any failure leaves the build in fp32
        log.warning("note: passages are embedded in fp32: no int8 graph in %s (%s: %s)", folder, type(e).__name__,
                    str(e).splitlines()[0][:200] if str(e) else "")
        return None
    finally:
        work.unlink(missing_ok=True)


def quantize_int8(source: Path, target: Path) -> None:
    """Write `source` (an fp32 ONNX graph, weights in its external data file) to `target` in the same
    folder with every weight MatMul (x @ W, W a 2-D initializer) in int8:

        s = max|x| / 127 per row (token);  q = round(x / s) + 128 (uint8)
        W ~ Wq * w (per output column, symmetric, Wq int8);  x @ W ~ MatMulInteger(q - 128, Wq) * s * w

    Per-token scales keep a passage's vector independent of the batch it is encoded in (one scale
    for the whole batch, as onnxruntime's quantize_dynamic makes, moved vectors to cosine 0.96-0.98
    and let batch mates change them). The other tensors (embeddings, biases, norms) stay fp32 and
    in the shared external data file."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(source), load_external_data=False)
    weights = {t.name: t for t in model.graph.initializer}
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 17)
    shared = [numpy_helper.from_array(np.array(1e-12, np.float32), "int8/eps"),
              numpy_helper.from_array(np.array(1 / 127, np.float32), "int8/inv127"),
              numpy_helper.from_array(np.array(128.0, np.float32), "int8/shift"),
              numpy_helper.from_array(np.array(128, np.uint8), "int8/zero"),
              numpy_helper.from_array(np.array([-1], np.int64), "int8/last")]
    nodes, replaced = [], set()
    for node in model.graph.node:
        w = weights.get(node.input[1]) if node.op_type == "MatMul" and len(node.input) == 2 else None
        if w is None or len(w.dims) != 2:
            nodes.append(node)
            continue
        array = _weight(w, source.parent)  # (K, N)
        scale = np.abs(array).max(axis=0) / 127
        scale[scale == 0] = 1.0
        p = f"int8/{len(replaced)}/"
        shared += [numpy_helper.from_array(np.clip(np.rint(array / scale), -127, 127).astype(np.int8), p + "w"),
                   numpy_helper.from_array(scale.astype(np.float32), p + "w_scale")]
        replaced.add(w.name)
        reduce = (helper.make_node("ReduceMax", [p + "abs"], [p + "max"], axes=[-1], keepdims=1) if opset < 18 else
                  helper.make_node("ReduceMax", [p + "abs", "int8/last"], [p + "max"], keepdims=1))
        nodes += [helper.make_node("Abs", [node.input[0]], [p + "abs"]), reduce,
                  helper.make_node("Max", [p + "max", "int8/eps"], [p + "max1"]),
                  helper.make_node("Mul", [p + "max1", "int8/inv127"], [p + "s"]),
                  helper.make_node("Div", [node.input[0], p + "s"], [p + "xs"]),
                  helper.make_node("Round", [p + "xs"], [p + "r"]),
                  helper.make_node("Add", [p + "r", "int8/shift"], [p + "r1"]),
                  helper.make_node("Cast", [p + "r1"], [p + "q"], to=TensorProto.UINT8),
                  helper.make_node("MatMulInteger", [p + "q", p + "w", "int8/zero"], [p + "y"]),
                  helper.make_node("Cast", [p + "y"], [p + "yf"], to=TensorProto.FLOAT),
                  helper.make_node("Mul", [p + "yf", p + "s"], [p + "ys"]),
                  helper.make_node("Mul", [p + "ys", p + "w_scale"], list(node.output))]
    used = {name for n in nodes for name in n.input}
    kept = [t for t in model.graph.initializer if t.name not in replaced]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept + [t for t in shared if t.name in used])
    onnx.save_model(model, str(target))


def _weight(tensor, folder: Path):
    """A float32 initializer as an array, read from its external data file if it has one (onnx's own
    reader refuses data files that are links, as a hard-linked or symlinked cache may hold)."""
    import numpy as np
    from onnx import TensorProto, numpy_helper

    if tensor.data_location != TensorProto.EXTERNAL:
        return numpy_helper.to_array(tensor).astype(np.float32)
    if tensor.data_type != TensorProto.FLOAT:
        raise ValueError(f"weight {tensor.name} is not float32")
    info = {e.key: e.value for e in tensor.external_data}
    location = Path(info["location"])
    if location.is_absolute() or ".." in location.parts:
        raise ValueError(f"weight {tensor.name} lies outside the export folder")
    count = int(np.prod(tensor.dims))
    data = np.fromfile(folder / location, dtype="<f4", count=count, offset=int(info.get("offset", 0)))
    if data.size != count:
        raise ValueError(f"weight {tensor.name} is truncated in {location}")
    return data.reshape(tuple(tensor.dims)).astype(np.float32)

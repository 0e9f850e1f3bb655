"""Train the VirNucPro MLP on labelled embeddings written by `virnucpro embed`.

Input: parquet files with one row per kept frame (`id` string, `dnabert` and `esm` float32
lists); the feature is [dnabert | esm], as in prediction. Labels come per file (`--virus` /
`--others`) or from a TSV `id<TAB>label` (label virus/others or 1/0). A frame takes the label of
the first TSV id that matches, trying in order
  1. its frame id (`seqA_chunk_1R2`),
  2. its chunk id (the frame id minus the frame suffix: `seqA_chunk_1`),
  3. its sequence id (the chunk id minus `_chunk_N`: `seqA`);
frames with no match are left out and counted.

The default recipe is the original's: SGD lr 2e-4 momentum 0.9, StepLR(10, 0.85), batch 32,
cross-entropy, a seeded 90/10 split, early stopping on validation loss (patience 5); the weights
of the best validation epoch are kept. Metrics are measured on the held-out split.
"""

from __future__ import annotations

import copy
import logging
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from virnucpro.errors import InputFormatError, VirnucproError
from virnucpro.fsutil.atomic import write_json_atomic
from virnucpro.models.classifier import (
    ClassifierInfo,
    MLPClassifier,
    save_classifier_safetensors,
)

log = logging.getLogger("virnucpro")

LABEL_VALUES = {"virus": 1, "1": 1, "others": 0, "0": 0}
_FRAME_ID = re.compile(r"^(?P<chunk>(?P<sequence>.+)_chunk_\d+)[FR][123]$")
_READ_BATCH_ROWS = 8192
_EVAL_BATCH_ROWS = 4096


@dataclass(frozen=True)
class TrainConfig:
    """The original recipe as defaults; `epochs` is an upper bound (early stopping ends sooner)."""

    epochs: int = 200
    learning_rate: float = 2e-4
    momentum: float = 0.9
    lr_step_epochs: int = 10
    lr_gamma: float = 0.85
    batch_size: int = 32
    patience: int = 5
    val_fraction: float = 0.1
    split_by: str = "frame"  # "frame" (the original) or "sequence" (no sequence in both splits)
    seed: int = 0
    device: str = "cpu"


@dataclass
class LabelledEmbeddings:
    ids: list[str]
    features: np.ndarray  # [N, dnabert_dim + esm_dim] float32
    labels: np.ndarray  # [N] int64, 1 = virus
    dnabert_dim: int
    esm_dim: int
    unlabelled: int = 0


@dataclass
class TrainResult:
    model: MLPClassifier
    metrics: dict
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0


# ---------------------------------------------------------------- labels


def read_label_table(path: str | Path) -> dict[str, int]:
    """`id<TAB>label` lines; blank lines, `#` comments and a header line are skipped."""
    table: dict[str, int] = {}
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip() or line.startswith("#"):
                continue
            parts = line.rstrip("\r\n").split("\t")
            value = LABEL_VALUES.get(parts[1].strip().lower()) if len(parts) >= 2 else None
            if value is None:
                if not table and len(parts) >= 2:
                    continue  # a header such as "id<TAB>label"
                raise InputFormatError(
                    f"{path}, line {line_number}: expected 'id<TAB>label' with label virus/others/1/0"
                )
            key = parts[0].strip()
            if table.get(key, value) != value:
                raise InputFormatError(f"{path}, line {line_number}: {key} has two different labels")
            table[key] = value
    if not table:
        raise InputFormatError(f"{path}: no labels found")
    return table


def label_for(frame_id: str, table: dict[str, int]) -> int | None:
    """The label of the frame id, else of its chunk id, else of its sequence id (see module doc)."""
    if frame_id in table:
        return table[frame_id]
    match = _FRAME_ID.match(frame_id)
    if match is None:
        return None
    for key in (match["chunk"], match["sequence"]):
        if key in table:
            return table[key]
    return None


def sequence_of(frame_id: str) -> str:
    match = _FRAME_ID.match(frame_id)
    return match["sequence"] if match else frame_id


# ---------------------------------------------------------------- reading parquet


def read_labelled_embeddings(
    sources: list[tuple[Path, int | None]], table: dict[str, int] | None
) -> LabelledEmbeddings:
    """Stream the parquet files batch by batch into one preallocated matrix of labelled rows.

    `sources` pairs each file with its label, or None to look its rows up in `table`.
    """
    import pyarrow.parquet as pq

    files = [(Path(path), label, _open_parquet(pq, Path(path))) for path, label in sources]
    total_rows = sum(reader.metadata.num_rows for _, _, reader in files)
    ids: list[str] = []
    labels = np.empty(total_rows, dtype=np.int64)
    features: np.ndarray | None = None
    dims: tuple[int, int] | None = None
    seen: set[str] = set()
    for path, file_label, reader in files:
        for batch in reader.iter_batches(batch_size=_READ_BATCH_ROWS, columns=["id", "dnabert", "esm"]):
            batch_ids = batch.column("id").to_pylist()
            _check_new_ids(batch_ids, seen, path)
            dnabert = _vectors(batch.column("dnabert"), path, "dnabert")
            esm = _vectors(batch.column("esm"), path, "esm")
            if dims is None:
                dims = (dnabert.shape[1], esm.shape[1])
                features = np.empty((total_rows, sum(dims)), dtype=np.float32)
            if (dnabert.shape[1], esm.shape[1]) != dims:
                raise InputFormatError(f"{path}: embedding sizes differ from the first file's {dims}")
            batch_labels = [file_label if file_label is not None else label_for(i, table or {}) for i in batch_ids]
            keep = np.array([label is not None for label in batch_labels], dtype=bool)
            start, stop = len(ids), len(ids) + int(keep.sum())
            ids.extend(i for i, k in zip(batch_ids, keep) if k)
            labels[start:stop] = [label for label in batch_labels if label is not None]
            features[start:stop, : dims[0]] = dnabert[keep]
            features[start:stop, dims[0]:] = esm[keep]
    if not ids:
        raise VirnucproError("no labelled embeddings: check the input files and the labels")
    n = len(ids)
    return LabelledEmbeddings(ids, features[:n], labels[:n], dims[0], dims[1], unlabelled=len(seen) - n)


def _check_new_ids(batch_ids: list, seen: set[str], path: Path) -> None:
    for frame_id in batch_ids:
        if frame_id is None or frame_id in seen:
            raise InputFormatError(f"{path}: frame id {frame_id!r} is missing or repeated")
        seen.add(frame_id)


def _open_parquet(pq, path: Path):
    if not path.is_file():
        raise InputFormatError(f"{path}: file not found")
    try:
        reader = pq.ParquetFile(path)
    except (OSError, ValueError) as error:
        raise InputFormatError(f"{path}: not a parquet file ({error})") from None
    missing = {"id", "dnabert", "esm"} - set(reader.schema_arrow.names)
    if missing:
        columns = ", ".join(sorted(missing))
        raise InputFormatError(f"{path}: missing column(s) {columns} (expected `virnucpro embed` output)")
    return reader


def _vectors(column, path: Path, name: str) -> np.ndarray:
    """A list<float> column as an [rows, dim] float32 array; every row must have the same length."""
    import pyarrow.compute as pc

    if column.null_count:
        raise InputFormatError(f"{path}: column {name} has missing values")
    lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
    if len(lengths) and (lengths.min() != lengths.max() or lengths[0] == 0):
        raise InputFormatError(f"{path}: rows of column {name} have different or zero lengths")
    values = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    return values.reshape(len(column), int(lengths[0]) if len(lengths) else 0)


# ---------------------------------------------------------------- split, fit, evaluate


def split_indices(ids: list[str], config: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/validation split of row indices, by frame or by whole sequence."""
    rng = np.random.default_rng(config.seed)
    n_val_target = max(1, round(len(ids) * config.val_fraction))
    if config.split_by == "frame":
        order = rng.permutation(len(ids))
        val, train = order[:n_val_target], order[n_val_target:]
    else:
        groups = np.array([sequence_of(frame_id) for frame_id in ids])
        names, group_of_row = np.unique(groups, return_inverse=True)
        sizes = np.bincount(group_of_row)
        shuffled = rng.permutation(len(names))
        taken = shuffled[: int(np.searchsorted(np.cumsum(sizes[shuffled]), n_val_target)) + 1]
        is_val = np.isin(group_of_row, taken)
        val, train = np.flatnonzero(is_val), np.flatnonzero(~is_val)
    if len(train) < 2:
        raise VirnucproError(f"too few labelled frames ({len(ids)}) for a train/validation split")
    return np.sort(train), np.sort(val)


def fit(data: LabelledEmbeddings, train: np.ndarray, val: np.ndarray, config: TrainConfig) -> TrainResult:
    """SGD with StepLR and early stopping on validation loss; returns the best epoch's model."""
    if len(np.unique(data.labels[train])) < 2:
        raise VirnucproError("the training split needs both virus and others examples")
    device = _device(config.device)
    torch.manual_seed(config.seed)
    model = MLPClassifier(data.features.shape[1]).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.learning_rate, momentum=config.momentum)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.lr_step_epochs, gamma=config.lr_gamma)
    shuffle = torch.Generator().manual_seed(config.seed)
    best_loss, best_state, best_epoch, history = math.inf, None, 0, []
    for epoch in range(1, config.epochs + 1):
        train_loss = _train_one_epoch(model, optimizer, data, train, config, shuffle, device)
        val_loss = _mean_loss(model, data, val, device)
        history.append({"epoch": epoch, "train_loss": _finite_or_none(train_loss),
                        "val_loss": _finite_or_none(val_loss), "lr": optimizer.param_groups[0]["lr"]})
        log.info("epoch %d: train loss %.4f, validation loss %.4f", epoch, train_loss, val_loss)
        scheduler.step()
        if val_loss < best_loss:
            best_loss, best_state, best_epoch = val_loss, copy.deepcopy(model.state_dict()), epoch
        elif epoch - best_epoch >= config.patience:
            log.info("early stop: no validation improvement for %d epochs", config.patience)
            break
    if best_state is None:
        raise VirnucproError("training diverged (validation loss is not finite): try a lower --lr")
    model.load_state_dict(best_state)
    model.eval()
    metrics = binary_metrics(predict_virus_probability(model, data.features[val], device), data.labels[val])
    return TrainResult(model=model, metrics=metrics, history=history, best_epoch=best_epoch)


def _finite_or_none(value: float) -> float | None:
    """JSON has no NaN/inf; a diverged epoch's loss is recorded as null."""
    return value if math.isfinite(value) else None


def _device(name: str) -> torch.device:
    try:
        device = torch.device(name)
    except RuntimeError:
        raise VirnucproError(f"unknown device {name!r} (use cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise VirnucproError(f"device {name} requested but CUDA is not available")
    return device


def _train_one_epoch(model, optimizer, data, train, config, shuffle, device) -> float:
    model.train()
    order = train[torch.randperm(len(train), generator=shuffle).numpy()]
    total, count = 0.0, 0
    for start in range(0, len(order), config.batch_size):
        rows = order[start:start + config.batch_size]
        if len(rows) < 2:
            continue  # BatchNorm cannot train on a batch of one
        x = torch.from_numpy(data.features[rows]).to(device)
        y = torch.from_numpy(data.labels[rows]).to(device)
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * len(rows)
        count += len(rows)
    return total / max(count, 1)


@torch.no_grad()
def _mean_loss(model: MLPClassifier, data: LabelledEmbeddings, rows: np.ndarray, device) -> float:
    model.eval()
    total = 0.0
    for start in range(0, len(rows), _EVAL_BATCH_ROWS):
        part = rows[start:start + _EVAL_BATCH_ROWS]
        logits = model(torch.from_numpy(data.features[part]).to(device))
        total += F.cross_entropy(logits, torch.from_numpy(data.labels[part]).to(device), reduction="sum").item()
    return total / len(rows)


def predict_virus_probability(model: MLPClassifier, features: np.ndarray, device) -> np.ndarray:
    parts = [
        model.probabilities(torch.from_numpy(features[start:start + _EVAL_BATCH_ROWS]).to(device))[:, 1].cpu()
        for start in range(0, len(features), _EVAL_BATCH_ROWS)
    ]
    return torch.cat(parts).numpy()


def binary_metrics(p_virus: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy, precision, recall, F1 (virus = positive; called virus when P(virus) > P(others),
    so a tie is `others` as in the original's argmax) and AUROC. Undefined ratios are None."""
    called = p_virus > 1.0 - p_virus
    positive = labels == 1
    tp = int(np.sum(called & positive))
    fp = int(np.sum(called & ~positive))
    fn = int(np.sum(~called & positive))
    tn = int(np.sum(~called & ~positive))
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    f1 = 2 * precision * recall / (precision + recall) if precision and recall else None
    return {
        "n": len(labels), "n_virus": int(positive.sum()), "n_others": int((~positive).sum()),
        "accuracy": (tp + tn) / len(labels), "precision": precision, "recall": recall, "f1": f1,
        "auroc": auroc(p_virus, labels),
        "confusion": {"tp": tp, "fp": fp, "fn": fn, "tn": tn},
    }


def auroc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """Area under the ROC curve via the rank-sum (Mann-Whitney U) identity, ties as half."""
    positive = np.asarray(labels) == 1
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    _, first, counts = np.unique(np.asarray(scores)[order], return_index=True, return_counts=True)
    ranks = np.empty(len(order), dtype=np.float64)
    ranks[order] = np.repeat(first + (counts + 1) / 2.0, counts)  # 1-based average rank of each tie group
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def train_classifier(
    sources: list[tuple[Path, int | None]],
    table: dict[str, int] | None,
    output: Path,
    config: TrainConfig,
    chunk_size: int | None = None,
    metrics_path: Path | None = None,
) -> TrainResult:
    """Read, split, fit, then write OUTPUT (our safetensors format) and the metrics JSON."""
    output = Path(output)
    metrics_path = Path(metrics_path) if metrics_path else output.with_suffix(".metrics.json")
    for target in (output, metrics_path):
        if not target.parent.is_dir():
            raise VirnucproError(f"{target.parent}: output directory does not exist")
    data = read_labelled_embeddings(sources, table)
    if data.unlabelled:
        log.warning("%d frames matched no label and were left out", data.unlabelled)
    train, val = split_indices(data.ids, config)
    log.info("%d labelled frames (%d virus): %d for training, %d for validation",
             len(data.ids), int(data.labels.sum()), len(train), len(val))
    result = fit(data, train, val, config)
    info = ClassifierInfo(
        input_dim=data.features.shape[1], hidden=result.model.hidden, dnabert_dim=data.dnabert_dim,
        esm_dim=data.esm_dim, chunk_size=chunk_size,
        source_name=f"virnucpro train on {len(data.ids)} frames from {len(sources)} file(s)",
    )
    save_classifier_safetensors(result.model.cpu(), output, info)
    write_json_atomic(metrics_path, {
        "model": str(output), "inputs": [str(path) for path, _ in sources],
        "config": asdict(config), "frames": {"labelled": len(data.ids), "unlabelled": data.unlabelled,
                                             "train": len(train), "validation": len(val)},
        "best_epoch": result.best_epoch, "validation": result.metrics, "history": result.history,
    })
    return result

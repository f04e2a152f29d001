"""Conformance of data plugins: datasets, per-sample transforms and batch transforms.

- dataset (options usually from ``conformance_kwargs(workdir)``, which writes tiny files): at
  least one sample; every sample in the contract — ``image`` float32 C×H×W with C =
  ``len(channel_names)``, ``targets`` and ``valid`` with the same keys (including every
  ``target_keys`` entry), H×W each, valid masks bool, ``meta`` a dict; ``normalization`` is None
  or per-channel ``{mean, std}``; indexing is repeatable; samples collate into a batch; the
  dataset pickles (DataLoader workers); a ``transform`` argument, if accepted (YAML transforms
  need it), is applied to every sample.
- transform: ``t(sample) -> sample`` keeps the contract (keys, dtypes, one spatial size for
  image, targets and masks), leaves its input untouched and is reproducible under
  ``torch.manual_seed``.
- batch_transform (built with the kit's standard ``tasks``): ``bt(batch, generator) -> batch``
  keeps the batch contract and transforms teacher outputs to the same size; the same generator
  seed gives the same result; torch's global RNG is not touched.
"""

from __future__ import annotations

import copy
import pickle

import torch
from torch.utils.data import default_collate

from mtdense.data.normalization import checked_normalization
from mtdense.data.synth_shapes import SyntheticShapes
from mtdense.registry import BATCH_TRANSFORMS, DATASETS, TRANSFORMS
from mtdense.testing.fixtures import sample_batch, standard_tasks


def equal(a, b) -> bool:
    """Nested equality of samples (tensors compared exactly; NaN equals NaN in the same place)."""
    if isinstance(a, torch.Tensor):
        if not (isinstance(b, torch.Tensor) and a.shape == b.shape and a.dtype == b.dtype):
            return False
        return torch.equal(a.nan_to_num(), b.nan_to_num()) and torch.equal(a.isnan(), b.isnan())
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b))
    return a == b


def check_sample(sample: dict, channels: int | None = None, target_keys=None, batched: bool = False) -> None:
    """The sample (or batch) contract; ``channels``/``target_keys`` when known."""
    lead = 1 if batched else 0
    for key in ("image", "targets", "valid"):
        assert key in sample, f"sample has no {key!r} (keys: {sorted(sample)})"
    image = sample["image"]
    assert isinstance(image, torch.Tensor) and image.dtype == torch.float32 and image.dim() == 3 + lead, \
        f"image must be a float32 {'B×' if batched else ''}C×H×W tensor, got {getattr(image, 'dtype', type(image))} " \
        f"of shape {tuple(getattr(image, 'shape', ()))}"
    if channels is not None:
        assert image.shape[lead] == channels, f"image has {image.shape[lead]} channels, channel_names has {channels}"
    size = tuple(image.shape[:lead]) + tuple(image.shape[-2:])
    assert sample["targets"].keys() == sample["valid"].keys(), \
        f"targets {sorted(sample['targets'])} and valid {sorted(sample['valid'])} must have the same keys"
    for key in target_keys or ():
        assert key in sample["targets"], f"target_keys names {key!r} but the sample has no such target"
    for key, target in sample["targets"].items():
        valid = sample["valid"][key]
        assert tuple(target.shape) == size, f"targets[{key!r}] has shape {tuple(target.shape)}, image size is {size}"
        assert valid.dtype == torch.bool and tuple(valid.shape) == size, \
            f"valid[{key!r}] must be bool of shape {size}, got {valid.dtype} {tuple(valid.shape)}"
    if not batched:
        assert isinstance(sample.get("meta", {}), dict), "meta must be a dict"


# ---------------------------------------------------------------- datasets

def _dataset(name: str, options: dict, **extra):
    return DATASETS.build({"type": name, **options, **extra}, "data.train")


def check_dataset_contract(ds) -> None:
    assert len(ds) >= 1, "the dataset is empty"
    names, keys = list(getattr(ds, "channel_names", None) or []), getattr(ds, "target_keys", None)
    assert names and all(isinstance(n, str) for n in names), "channel_names must be a non-empty list of names"
    assert keys is not None and all(isinstance(k, str) for k in keys), "target_keys must be a list of names"
    for i in sorted({0, len(ds) - 1}):
        check_sample(ds[i], len(names), keys)


def check_dataset_normalization(ds) -> None:
    assert hasattr(ds, "normalization"), "set normalization = None (raw images) or {'mean': [...], 'std': [...]}"
    if ds.normalization is not None:
        checked_normalization(ds.normalization, len(ds.channel_names), type(ds).__name__)


def check_dataset_repeatable_and_picklable(ds) -> None:
    assert equal(ds[0], ds[0]), "ds[0] differs between two reads"
    assert equal(pickle.loads(pickle.dumps(ds))[0], ds[0]), "a pickled copy (DataLoader worker) gives another ds[0]"
    batch = default_collate([ds[0], ds[min(1, len(ds) - 1)]])
    check_sample(batch, len(ds.channel_names), ds.target_keys, batched=True)


def check_dataset_transform(name: str, options: dict) -> None:
    def mark(sample: dict) -> dict:
        return {**sample, "meta": {**sample.get("meta", {}), "conformance": True}}

    assert _dataset(name, options, transform=mark)[0]["meta"].get("conformance"), "the transform was not applied"


def dataset_checks(name: str, options: dict, workdir) -> list:
    ds = _dataset(name, options)
    checks = [("sample contract", lambda: check_dataset_contract(ds)),
              ("normalization", lambda: check_dataset_normalization(ds)),
              ("repeatable, picklable, collates", lambda: check_dataset_repeatable_and_picklable(ds))]
    if "transform" in DATASETS.options(name):  # wrappers may leave transforms to the datasets they wrap
        checks.append(("transform argument is applied", lambda: check_dataset_transform(name, options)))
    return checks


# ---------------------------------------------------------------- per-sample transforms

def _shapes_sample() -> dict:
    return SyntheticShapes(length=1, size=(16, 24), channels=3)[0]


def check_transform(name: str, options: dict) -> None:
    transform = TRANSFORMS.build({"type": name, **options}, "data.train.transform")
    sample = _shapes_sample()
    before = copy.deepcopy(sample)
    out = transform(sample)
    assert equal(sample, before), "the transform modified its input sample in place"
    check_sample(out, channels=3, target_keys=["semantic", "height"])
    for key in sample["targets"]:
        assert out["targets"][key].dtype == sample["targets"][key].dtype, f"targets[{key!r}] changed dtype"


def check_transform_reproducible(name: str, options: dict) -> None:
    outs = []
    for _ in range(2):
        transform = TRANSFORMS.build({"type": name, **options}, "data.train.transform")
        torch.manual_seed(3)
        outs.append(transform(_shapes_sample()))
    assert equal(*outs), "same torch seed, different results"


def transform_checks(name: str, options: dict, workdir) -> list:
    return [("sample contract kept, input untouched", lambda: check_transform(name, options)),
            ("reproducible under torch.manual_seed", lambda: check_transform_reproducible(name, options))]


# ---------------------------------------------------------------- batch transforms

def _batch_transform(name: str, options: dict):
    tasks = standard_tasks()
    bt = BATCH_TRANSFORMS.build({"type": name, **options}, "data.batch_transforms.0", tasks=tasks)
    return bt, sample_batch(tasks, batch=4)


def check_batch_transform(name: str, options: dict) -> None:
    bt, batch = _batch_transform(name, options)
    out = bt(copy.deepcopy(batch), torch.Generator().manual_seed(0))
    check_sample(out, channels=batch["image"].shape[1], target_keys=list(batch["targets"]), batched=True)
    size = tuple(out["image"].shape[-2:])
    assert "teacher" in out, "batch['teacher'] was dropped"
    for teacher, outputs in batch["teacher"].items():
        for task, raw in outputs.items():
            got = out["teacher"][teacher][task]
            assert got.shape == (len(out["image"]), raw.shape[1], *size), \
                f"teacher output {teacher}/{task} has shape {tuple(got.shape)}; image is {tuple(out['image'].shape)}"


def check_batch_transform_rng(name: str, options: dict) -> None:
    bt, batch = _batch_transform(name, options)
    state = torch.random.get_rng_state()
    a = bt(copy.deepcopy(batch), torch.Generator().manual_seed(1))
    assert torch.equal(state, torch.random.get_rng_state()), "torch's global RNG was used; draw from `generator`"
    b = bt(copy.deepcopy(batch), torch.Generator().manual_seed(1))
    assert equal(a, b), "the same generator seed gave different results"


def batch_transform_checks(name: str, options: dict, workdir) -> list:
    return [("batch contract kept, teacher outputs follow", lambda: check_batch_transform(name, options)),
            ("randomness only from the generator", lambda: check_batch_transform_rng(name, options))]

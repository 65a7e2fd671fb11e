"""``python -m idlmam.bench``: how fast the chapter's training runs here, and how far from the floor.

One command, one process, the same :func:`idlmam.train.train_network` and the same model (the
chapter's 784-128-128-128-10 tanh MLP, batch 256, SGD with lr 0.1, a training pass and a test pass
per epoch) fed three ways:

* the **classic path**: a ``DataLoader`` over torchvision's ``FashionMNIST`` with ``ToTensor()``,
  converting every image every epoch. It is timed on ``Settings.classic_images`` training
  images (all 60,000 by default) and scaled to a full epoch; the output says how many were used;
* the **fast path**: :func:`idlmam.data.resident_loader`, the whole split decoded once;
* **K models in one pass** (:func:`idlmam.train.train_many`, each model in its own batch order)
  against K single fast runs, and what gathering K orders of batches costs against one.

It also times this machine's matrix products at the shapes the model uses, to print the
*arithmetic floor*: the seconds an epoch would take if it did nothing but its matrix products
(forward, the two backward products per layer, the test pass), and estimates the whole chapter.
Every measurement is repeated round by round (floor, classic, fast, K models, again); times are
medians over the rounds, and each ratio is the median of the ratios within the rounds, printed
with their range. Other processes on the machine show up as noise, so the load average is
printed with the results; on a busy machine, ``--threads 1 --cpu-time`` counts the CPU seconds
the work took instead of the wall seconds (two OpenMP threads that share their cores with other
processes wait for each other, and wall times then mean little).

Example:
    ``python -m idlmam.bench --json bench.json`` (``--quick`` for a seconds-long smoke run)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from .budget import BUDGETS, Budget
from .data import classic_loader, fashion_mnist, resident_loader, subset
from .models import mlp
from .train import train_many, train_network
from .utils import get_device, order_seed

__all__ = ["Settings", "epoch_flops", "matmul_floor", "chapter_epochs", "run_bench", "main"]

N_TRAIN, N_TEST = 60_000, 10_000  # a full Fashion-MNIST epoch: one training and one test pass
BATCH_SIZE, LR = 256, 0.1
EVAL_BATCH = 1024  # what ResidentLoader.eval_batches uses for the test pass
# Training runs in the source chapter: the SGD baseline, four schedules, momentum, Nesterov, the
# Adam family and the clipping runs (13 runs of budget.chapter.epochs), plus the two Optuna studies.
CHAPTER_RUNS = 13


@dataclass
class Settings:
    """What one benchmark run does.

    Args:
        device: where to train.
        k: models trained together in the K-model path.
        classic_images: training images the classic path is timed on (and a sixth as many test
            images, the proportion of a real epoch); all 60,000 by default. Fewer are timed
            and scaled up to a full epoch, start-up costs included, which overstates the epoch.
        train_images: training images of the fast and K-model paths (None: all 60,000).
        test_images: test images of the fast and K-model paths (None: all 10,000).
        epochs: epochs of each single fast run; every epoch is timed, the first included.
        k_epochs: epochs of each K-model run; every epoch is timed, the first included. As
            many as ``epochs`` by default, so that both paths are the median epoch of a run
            (the first epoch of a run is the slowest: it allocates and warms up).
        rounds: every measurement is repeated this many times, round by round, so that load
            from other processes falls on all of them alike. The ratios (speed-up, distance to
            the floor, K models) are computed within each round and their medians reported: a
            machine's speed can drift over minutes, and a ratio of two timings taken seconds
            apart drifts much less than either timing.
        floor_repeats: timings per matrix product for the floor.
        threads: ``torch.set_num_threads`` for the run (None: torch's default).
        cpu_time: measure this process's CPU seconds instead of wall seconds. With one thread
            that is the time the work took, however busy the machine is (time the process spent
            waiting for a core does not count); it needs ``threads=1`` on the CPU.
    """

    device: str = "cpu"
    k: int = 8
    classic_images: int = N_TRAIN
    train_images: int | None = None
    test_images: int | None = None
    epochs: int = 3
    k_epochs: int = 3
    rounds: int = 5
    floor_repeats: int = 15
    threads: int | None = None
    cpu_time: bool = False


_clock: Callable[[], float] = time.perf_counter  # set by run_bench


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_seconds(fn: Callable[[], object], repeats: int, device: torch.device) -> float:
    fn()  # warm-up: first calls pick kernels and allocate
    times = []
    for _ in range(repeats):
        _sync(device)
        start = _clock()
        fn()
        _sync(device)
        times.append(_clock() - start)
    return statistics.median(times)


def _linear_shapes(model: nn.Module) -> list[tuple[int, int]]:
    return [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, nn.Linear)]


def epoch_flops(model: nn.Module, n_train: int = N_TRAIN, n_test: int = N_TEST) -> float:
    """Floating-point operations of the matrix products in one epoch (training and test pass).

    Per training example and ``Linear(in, out)`` layer: ``2*in*out`` for the forward product,
    as much for the weight gradient and, except in the first layer (whose input needs no
    gradient), for the input gradient; per test example, the forward product only. For the
    chapter's MLP that is about 39 GFLOP.

    Example:
        >>> round(epoch_flops(mlp()) / 1e9, 1)
        39.0
    """
    total = 0.0
    for index, (fan_in, fan_out) in enumerate(_linear_shapes(model)):
        mac = fan_in * fan_out
        total += n_train * 2 * mac * (2 if index == 0 else 3) + n_test * 2 * mac
    return total


def matmul_floor(
    model: nn.Module,
    *,
    batch_size: int = BATCH_SIZE,
    eval_batch: int = EVAL_BATCH,
    n_train: int = N_TRAIN,
    n_test: int = N_TEST,
    device: torch.device | str = "cpu",
    repeats: int = 15,
) -> float:
    """Seconds one epoch's matrix products take on ``device``, each timed alone at its real shape.

    For each ``Linear(in, out)``: the forward product ``(B, in) @ (in, out)`` with its bias, the
    weight gradient ``(out, B) @ (B, in)``, the input gradient ``(B, out) @ (out, in)`` (not for
    the first layer) at the training batch, and the forward product at the evaluation batch;
    medians, scaled by the number of examples. Nothing else an epoch does (activations, the loss,
    the optimizer, Python) is counted: no loop over this model can be faster.

    Returns:
        The floor in seconds per epoch.
    """
    device = get_device(str(device))
    dtype = next(model.parameters()).dtype
    per_train_example = per_test_example = 0.0
    for index, (fan_in, fan_out) in enumerate(_linear_shapes(model)):
        W = torch.randn(fan_out, fan_in, device=device, dtype=dtype)
        b = torch.randn(fan_out, device=device, dtype=dtype)
        X = torch.randn(batch_size, fan_in, device=device, dtype=dtype)
        G = torch.randn(batch_size, fan_out, device=device, dtype=dtype)
        X_eval = torch.randn(eval_batch, fan_in, device=device, dtype=dtype)
        products = [
            partial(torch.addmm, b, X, W.t()),  # (B, in) -> (B, out)
            partial(torch.mm, G.t(), X),  # dW: (out, B) @ (B, in)
        ]
        if index > 0:
            products.append(partial(torch.mm, G, W))  # dX: (B, out) @ (out, in)
        seconds = sum(_median_seconds(product, repeats, device) for product in products)
        per_train_example += seconds / batch_size
        evaluate = partial(torch.addmm, b, X_eval, W.t())
        per_test_example += _median_seconds(evaluate, repeats, device) / eval_batch
    return per_train_example * n_train + per_test_example * n_test


def chapter_epochs(budget: Budget, *, seeds: int = 1) -> float:
    """Full-data epochs of the chapter's model the whole chapter trains under ``budget``.

    ``CHAPTER_RUNS`` runs of ``budget.chapter.epochs`` (each ``seeds`` times) plus the two Optuna
    studies (``trials + prune_trials`` trials of ``budget.studies.epochs``, pruning ignored), each
    scaled by the fraction of the training set it uses.

    Example:
        >>> chapter_epochs(BUDGETS["chapter"]), chapter_epochs(BUDGETS["full"])
        (950.0, 345.0)
    """
    runs, studies = budget.chapter, budget.studies
    run_epochs = CHAPTER_RUNS * runs.epochs * seeds * (runs.train_size or N_TRAIN) / N_TRAIN
    trial_epochs = (studies.trials + studies.prune_trials) * studies.epochs
    return run_epochs + trial_epochs * (studies.train_size or N_TRAIN) / N_TRAIN


def _sgd(params) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=LR)


def _single_epochs(train, test, epochs: int, device: torch.device) -> list[float]:
    """Seconds of each epoch (training and test pass) of one train_network run."""
    stamps = [_clock()]
    model = mlp()
    train_network(
        model,
        nn.CrossEntropyLoss(),
        train,
        test_loader=test,
        epochs=epochs,
        device=device,
        optimizer=_sgd(model.parameters()),
        disable_tqdm=True,
        on_epoch_end=lambda epoch, row: stamps.append(_clock()),
    )
    return [b - a for a, b in zip(stamps, stamps[1:])]


def _many_epochs(train, test, epochs: int, k: int, device: torch.device) -> list[float]:
    """Seconds of each epoch of one train_many run with ``k`` models, each in its own order."""
    stamps = [_clock()]
    train_many(
        mlp,
        range(k),
        nn.CrossEntropyLoss(),
        train,
        test_loader=test,
        make_optimizer=_sgd,
        epochs=epochs,
        device=device,
        disable_tqdm=True,
        on_epoch_end=lambda epoch, row: row["seed"] == k - 1 and stamps.append(_clock()),
    )
    return [b - a for a, b in zip(stamps, stamps[1:])]


def _gather_seconds(train, k: int, device: torch.device) -> float:
    """Seconds to draw one epoch of shuffled batches for ``k`` models, each in its own order."""
    orders = [torch.Generator().manual_seed(order_seed(seed)) for seed in range(k)]
    start = _clock()
    for _batch in train.stacked_batches(orders):
        pass  # each batch is gathered (index_select) as it is drawn
    _sync(device)
    return _clock() - start


def _loaders(make: Callable, n_train: int | None, n_test: int | None) -> tuple:
    train_set = subset(fashion_mnist(train=True), n_train, seed=0)
    test_set = subset(fashion_mnist(train=False), n_test, seed=0)
    scale = (N_TRAIN + N_TEST) / (len(train_set) + len(test_set))  # 1 unless subsets are used
    return (
        make(train_set, BATCH_SIZE, shuffle=True, seed=0),
        make(test_set, BATCH_SIZE),
        scale,
        len(train_set),
        len(test_set),
    )


def run_bench(settings: Settings, log: Callable[[str], None] = print) -> dict:
    """Run every measurement of the benchmark and return the results (see :func:`main`)."""
    global _clock
    device = get_device(settings.device)
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    if settings.cpu_time and (device.type != "cpu" or torch.get_num_threads() != 1):
        raise ValueError(
            "cpu_time counts this process's CPU seconds, which equal the work's "
            "time only with one thread on the CPU: add --threads 1"
        )
    _clock = time.process_time if settings.cpu_time else time.perf_counter
    started = time.perf_counter()
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    clock_name = "CPU seconds" if settings.cpu_time else "wall seconds"
    log(
        f"idlmam.bench on {device.type} ({torch.get_num_threads()} threads, {os.cpu_count()} CPUs), "
        f"torch {torch.__version__}, load average {load_before:.1f}; times in {clock_name}, "
        f"medians of {settings.rounds} rounds"
    )

    if not settings.cpu_time and load_before > (os.cpu_count() or 1):
        log(
            f"note: load average {load_before:.1f} on {os.cpu_count()} CPUs: other processes compete "
            "for the cores, so wall times are unreliable (threads that share a core with other "
            "processes wait for each other); `--threads 1 --cpu-time` measures the work itself"
        )

    model = mlp()
    flops = epoch_flops(model)
    classic_train, classic_test, classic_scale, n_classic, n_classic_test = _loaders(
        classic_loader,
        min(settings.classic_images, N_TRAIN),
        max(1, round(settings.classic_images / 6)),
    )
    resident = partial(resident_loader, device=device)
    train, test, scale, n_train, n_test = _loaders(
        resident, settings.train_images, settings.test_images
    )

    next(iter(classic_train))  # warm-up: the first batch also imports and opens what the rest reuse
    floors, classics, single_times, many_times = [], [], [], []
    for round_ in range(settings.rounds):
        # 1. this machine's matrix products at the model's shapes: the arithmetic floor
        floors.append(matmul_floor(model, device=device, repeats=settings.floor_repeats))
        # 2. the classic path: a DataLoader converting every image, on classic_images images
        single = mlp()
        start = _clock()
        train_network(
            single,
            nn.CrossEntropyLoss(),
            classic_train,
            test_loader=classic_test,
            epochs=1,
            device=device,
            optimizer=_sgd(single.parameters()),
            disable_tqdm=True,
        )
        classics.append((_clock() - start) * classic_scale)
        # 3. the fast path (one model) and 4. K models in one pass, on resident tensors
        single_times += [t * scale for t in _single_epochs(train, test, settings.epochs, device)]
        many_times += [
            t * scale for t in _many_epochs(train, test, settings.k_epochs, settings.k, device)
        ]
        log(
            f"round {round_ + 1}/{settings.rounds}: floor {floors[-1]:.3f} s, classic "
            f"{classics[-1]:.2f} s, fast {statistics.median(single_times[-settings.epochs :]):.3f} s, "
            f"{settings.k} models {statistics.median(many_times[-settings.k_epochs :]):.3f} s per epoch"
        )
    # 5. what giving each of the K models its own batch order costs: the gathers of one epoch
    gathers = [_gather_seconds(train, 1, device) * scale for _ in range(settings.rounds)]
    k_gathers = [_gather_seconds(train, settings.k, device) * scale for _ in range(settings.rounds)]
    log(
        f"gathering one epoch of batches: {statistics.median(gathers):.3f} s for one order, "
        f"{statistics.median(k_gathers):.3f} s for {settings.k} orders (one per model)"
    )
    floor, classic = statistics.median(floors), statistics.median(classics)
    fast, many = statistics.median(single_times), statistics.median(many_times)
    # ratios within each round, then their median (robust to the machine's drift between rounds)
    per_round_fast = [
        statistics.median(single_times[r * settings.epochs : (r + 1) * settings.epochs])
        for r in range(settings.rounds)
    ]
    per_round_many = [
        statistics.median(many_times[r * settings.k_epochs : (r + 1) * settings.k_epochs])
        for r in range(settings.rounds)
    ]
    speedups = [c / f for c, f in zip(classics, per_round_fast)]
    floor_ratios = [f / fl for f, fl in zip(per_round_fast, floors)]
    k_speedups = [settings.k * f / m for f, m in zip(per_round_fast, per_round_many)]

    full = BUDGETS["full"]
    results = {
        "classic_s_per_epoch": classic,
        "fast_s_per_epoch": fast,
        "speedup": statistics.median(speedups),
        "floor_s_per_epoch": floor,
        "k_models": settings.k,
        "k_models_s_per_epoch": many,
        "k_single_s_per_epoch": settings.k * fast,
        "gather_s_per_epoch": statistics.median(gathers),
        "k_gather_s_per_epoch": statistics.median(k_gathers),
        "chapter_full_minutes": chapter_epochs(full) * fast / 60,
        # more detail
        "floor_ratio": statistics.median(floor_ratios),
        "k_speedup": statistics.median(k_speedups),
        "speedup_per_round": speedups,
        "floor_ratio_per_round": floor_ratios,
        "k_speedup_per_round": k_speedups,
        "gflop_per_epoch": flops / 1e9,
        "matmul_gflops": flops / floor / 1e9,
        "budget_minutes": {
            name: {
                "epochs": chapter_epochs(b),
                "seeds": b.chapter.seeds,
                "fast": chapter_epochs(b) * fast / 60,
                "fast_seeds": chapter_epochs(b, seeds=b.chapter.seeds) * fast / 60,
                "classic": chapter_epochs(b) * classic / 60,
            }
            for name, b in BUDGETS.items()
        },
        "classic_images": [n_classic, n_classic_test],
        "fast_images": [n_train, n_test],
        "floor_times": floors,
        "classic_times": classics,
        "fast_epoch_times": single_times,
        "k_epoch_times": many_times,
        "clock": "cpu" if settings.cpu_time else "wall",
        "device": device.type,
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "load_average": [
            load_before,
            os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan"),
        ],
        "bench_seconds": time.perf_counter() - started,
    }
    log(_table(results))
    return results


def _table(r: dict) -> str:
    k = r["k_models"]
    full = [N_TRAIN, N_TEST]
    scaled = (
        ""
        if r["fast_images"] == full
        else (f"; timed on {r['fast_images'][0]:,} + {r['fast_images'][1]:,} images, scaled")
    )

    def spread(key: str, digits: int) -> str:
        values = r[f"{key}_per_round"]
        return f"{min(values):.{digits}f}-{max(values):.{digits}f}"

    classic_note = (
        "one whole epoch"
        if r["classic_images"] == full
        else f"timed on {r['classic_images'][0]:,} + {r['classic_images'][1]:,} images, "
        "scaled to 60,000 + 10,000"
    )
    rows = [
        ("classic: DataLoader + ToTensor", r["classic_s_per_epoch"], "1.0x", classic_note),
        (
            "fast: resident loader",
            r["fast_s_per_epoch"],
            f"{r['speedup']:.1f}x",
            f"{spread('speedup', 1)}x over the rounds; {r['floor_ratio']:.2f}x the floor "
            f"({spread('floor_ratio', 2)}){scaled}",
        ),
        (
            "arithmetic floor (matmuls only)",
            r["floor_s_per_epoch"],
            f"{r['classic_s_per_epoch'] / r['floor_s_per_epoch']:.0f}x",
            f"{r['gflop_per_epoch']:.1f} GFLOP at {r['matmul_gflops']:.0f} GFLOP/s",
        ),
        (
            f"{k} models in one pass (train_many)",
            r["k_models_s_per_epoch"],
            "",
            f"{r['k_speedup']:.2f}x cheaper than {k} single runs ({spread('k_speedup', 2)}){scaled}",
        ),
        (f"{k} single runs (fast path)", r["k_single_s_per_epoch"], "", f"{k} x the fast path"),
    ]
    lines = [
        "",
        "s/epoch: seconds per epoch of the 784-128-128-128-10 tanh MLP, batch 256, SGD "
        "lr 0.1, training pass + test pass (60,000 + 10,000 images); times: medians over the "
        "rounds; ratios: the median of each round's ratio (and their range)",
        f"{'path':36s} {'s/epoch':>9s} {'speed':>7s}  note",
    ]
    lines += [f"{name:36s} {sec:9.3f} {speed:>7s}  {note}" for name, sec, speed, note in rows]
    for name, m in r["budget_minutes"].items():
        lines.append(
            f"whole chapter, {name} budget ({m['epochs']:.0f} epochs of this model): fast "
            f"{m['fast']:.1f} min ({m['fast_seeds']:.1f} min with {m['seeds']} seed(s) per run, "
            f"not counting train_many's saving), classic {m['classic']:.0f} min"
        )
    lines.append(
        f"{r['device']}, {r['threads']} thread(s), {r['clock']} clock, load average "
        f"{r['load_average'][0]:.1f} before / {r['load_average'][1]:.1f} after; "
        f"the benchmark took {r['bench_seconds']:.0f} s"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m idlmam.bench [--device cpu|cuda] [--json PATH] [--quick]``: print the table.

    With ``--json PATH`` it also writes the results, among them ``classic_s_per_epoch``,
    ``fast_s_per_epoch``, ``speedup``, ``floor_s_per_epoch``, ``k_models``,
    ``k_models_s_per_epoch``, ``k_single_s_per_epoch`` and ``chapter_full_minutes`` (all times
    per full Fashion-MNIST epoch: 60,000 training and 10,000 test images).
    """
    parser = argparse.ArgumentParser(
        prog="python -m idlmam.bench", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--k", type=int, default=8, help="models trained together (default: 8)")
    parser.add_argument(
        "--classic-images",
        type=int,
        default=N_TRAIN,
        help="training images the classic path is timed on (default: all 60,000)",
    )
    parser.add_argument(
        "--train-images",
        type=int,
        default=None,
        help="training images for the fast paths (default: all 60,000)",
    )
    parser.add_argument(
        "--rounds", type=int, default=5, help="repeats of every measurement (default: 5)"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    parser.add_argument(
        "--cpu-time",
        action="store_true",
        help="count CPU seconds instead of wall seconds (with --threads 1): "
        "robust to other processes on a busy machine",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a tiny setting that checks the command works (seconds; rough numbers)",
    )
    args = parser.parse_args(argv)
    settings = Settings(
        device=args.device,
        k=args.k,
        classic_images=args.classic_images,
        train_images=args.train_images,
        rounds=args.rounds,
        threads=args.threads,
        cpu_time=args.cpu_time,
    )
    if args.quick:
        settings = Settings(
            device=args.device,
            k=min(args.k, 2),
            classic_images=256,
            train_images=512,
            test_images=128,
            epochs=1,
            k_epochs=1,
            rounds=1,
            floor_repeats=3,
            threads=args.threads,
            cpu_time=args.cpu_time,
        )
    if min(settings.k, settings.rounds, settings.classic_images, settings.threads or 1) < 1:
        parser.error("--k, --rounds, --threads and --classic-images must be at least 1")
    try:
        results = run_bench(settings, log=lambda line: print(line, flush=True))
    except ValueError as err:  # --device cuda without a GPU, --cpu-time without --threads 1
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

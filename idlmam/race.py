"""``python -m idlmam.race MODULE:NAME``: race your optimizer against the optimizers page's field.

Your optimizer gets exactly what each optimizer of the page gets (:mod:`idlmam.experiments.race`):
three learning rates on a log grid from ``--lr`` up (x 4, x 16), one seed each, and up to two
more beyond the end of the grid where the best of them lies (the page's rule), chosen on a
validation split; the chosen rate run with every seed and scored once on the test set; the same
warmup and linear decay to zero, stepped every batch. The field's runs are cached (per budget,
package version and device), so a second race trains only yours. It trains on one CPU thread,
as the page does (a network this small gains little from more).

It prints the budget, the cache, a progress bar over the runs and the leaderboard, and writes
into ``--out``: ``leaderboard.csv``, ``runs.csv`` (every run, epoch by epoch),
``test_accuracy.png`` and ``report.html`` (one file, the figure inside).

Exit statuses: 0, the race finished and your optimizer has a result; 1, your optimizer failed
(it diverged at every rate, or raised) but the leaderboard was written; 2, bad input (one line
on stderr).

Example::

    python -m idlmam.race myopt.py:SignSGD --lr 1e-3 --budget quick
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import os
import re
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import NoReturn

import pandas as pd
import torch

from .budget import BUDGETS, get_budget
from .data import CorruptDataError, DataUnavailableError
from .experiments.race import (
    GRID,
    VAL_FRACTION,
    WARMUP,
    RaceInputError,
    cache_dir,
    field,
    field_names,
    leaderboard,
    load_cached,
    load_contender,
    planned_runs,
    readable,
    run_race,
    setting,
)
from .experiments.sweep import rate_grid
from .stats import compare, t_interval
from .utils import get_device, progress_enabled

__all__ = ["build_parser", "main"]

PROG = "python -m idlmam.race"
EPILOG = """exit status:
  0  the race finished and your optimizer has a result
  1  your optimizer failed (diverged at every rate, or raised) but the leaderboard was written
  2  bad input (one line on stderr), or no Fashion-MNIST to train on"""


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors raise :class:`RaceInputError` (one line, exit 2)."""

    def error(self, message: str) -> NoReturn:
        raise RaceInputError(f"{message} (see --help)")


def build_parser() -> argparse.ArgumentParser:
    """The command line (see the module docstring)."""
    parser = _Parser(
        prog=PROG,
        description="Race an optimizer against the optimizers page's field, under its protocol.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "spec",
        metavar="MODULE:NAME",
        help="a module (dotted, from here) or a .py path, and an optimizer class or a "
        "function (params, lr) -> optimizer in it",
    )
    parser.add_argument(
        "--lr", type=float, default=1e-3, help="its usual rate, the centre of its grid (1e-3)"
    )
    below, above, factor = GRID["below"], GRID["above"], GRID["factor"]
    parser.add_argument(
        "--grid",
        default=f"{below},{above},{factor:g}",
        metavar="BELOW,ABOVE,FACTOR",
        help=f"rates below and above --lr, and their ratio (the field's: {below},{above},{factor:g})",
    )
    parser.add_argument(
        "--field", metavar="NAME,NAME", help="race against these of the field only (default: all)"
    )
    parser.add_argument("--budget", choices=sorted(BUDGETS), help="default: IDL_BUDGET, else full")
    parser.add_argument("--out", metavar="DIR", help="where the files go (default: race-NAME/)")
    parser.add_argument(
        "--fresh", action="store_true", help="retrain the field, overwrite its cache"
    )
    parser.add_argument("--name", help="its label in the table (default: NAME)")
    return parser


def _grid(text: str) -> dict:
    try:
        below, above, factor = text.split(",")
        grid = dict(below=int(below), above=int(above), factor=float(factor))
        rate_grid(1.0, **grid)
    except ValueError:  # too few parts, not numbers, or a grid rate_grid refuses
        raise RaceInputError(
            f"--grid {text!r}: give BELOW,ABOVE,FACTOR, two whole numbers >= 0 and a ratio "
            "above 1, e.g. 0,2,4"
        ) from None
    return grid


def _field(text: str | None) -> list[str]:
    names = field_names()
    if text is None:
        return names
    chosen = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in names]
    if unknown or not chosen:
        raise RaceInputError(
            f"--field: unknown name(s) {', '.join(map(repr, unknown)) or '(none given)'}; "
            f"the field is: {', '.join(names)}"
        )
    return chosen


def _plan(args: argparse.Namespace) -> argparse.Namespace:
    """Check every input before any data is loaded; raise RaceInputError with one line."""
    if not args.lr > 0:
        raise RaceInputError(f"--lr must be above 0, got {args.lr}")
    grid, names = _grid(args.grid), _field(args.field)
    name, mine = load_contender(args.spec, lr=args.lr)
    name = args.name or name
    if name in names:
        raise RaceInputError(f"{name!r} is a name of the field: label yours with --name")
    slug = re.sub(r"[^A-Za-z0-9.-]+", "_", name).strip("_") or "mine"
    out = Path(args.out or f"race-{slug}")
    budget = get_budget(args.budget)
    return argparse.Namespace(
        name=name, mine=replace(mine, grid=grid), names=names, out=out, budget=budget
    )


def _say(line: str = "") -> None:
    print(line, flush=True)


def _from_cache(contenders: dict, race, fresh: bool) -> dict:
    """The field's runs the cache holds (none with ``--fresh``); says where it is and what."""
    cache = cache_dir(race)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        hits = {} if fresh else load_cached(contenders, race, cache)
    for warning in caught:  # a file that could not be read: one line, then it is retrained
        print(f"warning: {warning.message}", file=sys.stderr)
    todo = [name for name in contenders if name not in hits]
    _say(f"cache: {cache}")
    _say(f"field: {len(hits)} of {len(contenders)} from the cache" + _training(todo, fresh))
    return hits


def _race(plan: argparse.Namespace, fresh: bool) -> dict:
    """Train what is missing, with one progress bar over the runs; return every result."""
    from tqdm import tqdm

    torch.set_num_threads(1)  # as the page: small networks gain little from more, runs repeat
    race = setting(plan.budget, get_device())
    contenders = {n: c for n, c in field(race.warmup_steps).items() if n in plan.names}
    hits = _from_cache(contenders, race, fresh)
    todo = {n: c for n, c in contenders.items() if n not in hits}
    total = sum(planned_runs(c, race) for c in [*todo.values(), plan.mine])
    bar = tqdm(total=total, unit="run", desc="training", disable=not progress_enabled())
    quiet = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"  # one bar: not one per run as well
    try:
        trained = run_race(todo, race, cache=cache_dir(race), fresh=True, done=bar.update)
        yours = run_race({plan.name: plan.mine}, race, done=bar.update)
    finally:
        bar.close()
        if quiet is None:
            del os.environ["TQDM_DISABLE"]
        else:
            os.environ["TQDM_DISABLE"] = quiet
    both = {**hits, **trained}
    return {**{name: both[name] for name in contenders}, **yours}


def _training(todo: list[str], fresh: bool) -> str:
    if not todo:
        return ""
    why = " (--fresh)" if fresh else ""
    return f"; training {', '.join(todo)}{why}"


def _curve(ax, tuned: pd.DataFrame, band: bool, **style) -> list[float]:
    """One optimizer's mean test accuracy per epoch (and its 95% band); the later means."""
    by_epoch = tuned.groupby("epoch")["test Accuracy"]
    mean = 100 * by_epoch.mean()
    x = mean.index + 1  # epochs trained
    ax.plot(x, mean, **style)
    if band:  # NaN with one seed: no band
        low, high = zip(*(t_interval(values) for _, values in by_epoch))
        clipped = (100 * pd.Series(bound).clip(0, 1) for bound in (low, high))
        ax.fill_between(x, *clipped, color=style["color"], alpha=0.15, lw=0)
    return list(mean[x > x.max() / 2])


def _figure(results: dict, mine: str, board: pd.DataFrame) -> bytes:
    """Test accuracy per epoch at each tuned rate, yours in black, as PNG bytes.

    Bands (95% over the seeds) for yours and the best of the others only: nine bands in one
    axes would be a wash.
    """
    import matplotlib as mpl
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(9, 4.8), layout="constrained")
    ax = fig.add_subplot()
    colours = dict(zip(field_names(), mpl.colormaps["tab10"].colors))  # the page's colours
    best = next((n for n in board.index[board["status"] == "ok"] if n != mine), None)
    later = []  # the means of the later epochs, which the axis is zoomed on
    for name, result in results.items():
        if not result.ok:
            continue
        yours = name == mine
        style = dict(
            color="black" if yours else colours.get(name, "grey"),
            lw=3 if yours else 1.5,
            label=f"{name} (yours)"
            if yours
            else name + (" (best of the others)" if name == best else ""),
            zorder=3 if yours else 2,
        )
        later += _curve(ax, result.tuned, yours or name == best, **style)
    if later:
        ax.set_ylim(max(0, min(later) - 3), min(100, max(later) + 2))
    ax.set(xlabel="epochs trained", ylabel="test accuracy (%)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(
        "Test accuracy at each optimizer's tuned rate, mean over the seeds\n"
        "(95% bands for yours and the best of the others; axis zoomed on the later epochs)",
        fontsize=10,
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=9)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


def _runs_frame(results: dict) -> pd.DataFrame:
    frames = [r.trials.assign(stage="trial") for r in results.values() if len(r.trials)]
    frames += [r.tuned.assign(stage="tuned") for r in results.values() if len(r.tuned)]
    return pd.concat(frames, ignore_index=True)


def _report(plan, board, shown, png: bytes, lines: list[str]) -> str:
    items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    picture = base64.b64encode(png).decode("ascii")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Optimizer race: {html.escape(plan.name)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem}}
table{{border-collapse:collapse;font-size:.9rem}}td,th{{border:1px solid #ccc;padding:.25rem .5rem;
text-align:right}}th{{background:#f3f3f3}}img{{max-width:100%}}</style></head><body>
<h1>Optimizer race: {html.escape(plan.name)} against the field</h1>
<ul>{items}</ul>
{shown.to_html(border=0)}
<p>* yours. Accuracies in percent; ± the half-width of a 95% t-interval over the seeds;
<em>vs leader</em> paired by seed; <em>edge</em>: the chosen rate is an end of the rates it tried.</p>
<img alt="Test accuracy per epoch at each optimizer's tuned rate, mean with a 95% band over
seeds, one line per optimizer, {html.escape(plan.name)} in black" src="data:image/png;base64,{picture}">
</body></html>
"""


def _summary(plan, race_seconds: float, board: pd.DataFrame, cached: int) -> list[str]:
    budget = plan.budget.describe(plan.budget.since).replace("`", "")
    mine = plan.mine
    rates = ", ".join(f"{r:.2g}" for r in mine.rates())
    return [
        f"budget: {budget} ({VAL_FRACTION:.0%} of them held out for validation)",
        f"protocol: each optimizer tries the rates of its grid (3 for the field; {plan.name}: "
        f"{rates}), one seed each, and up to {mine.extend} more beyond the end where the best "
        "lies; the best on validation accuracy is run with every seed and scored once on test; "
        f"every optimizer warms up over {WARMUP:.0%} of the steps, then decays linearly to zero "
        "(schedule-free AdamW: warmup only)",
        f"target: {board.attrs['target']:.1%} validation accuracy ({board.attrs['target_rule']})",
        f"this race took {race_seconds:.0f} s, {cached} of the field's {len(plan.names)} "
        "read from the cache",
    ]


def _write(plan, results, board, shown, lines) -> None:
    plan.out.mkdir(parents=True, exist_ok=True)
    board.to_csv(plan.out / "leaderboard.csv")
    _runs_frame(results).to_csv(plan.out / "runs.csv", index=False)
    png = _figure(results, plan.name, board)
    (plan.out / "test_accuracy.png").write_bytes(png)
    (plan.out / "report.html").write_text(_report(plan, board, shown, png, lines), "utf-8")


def _versus(results: dict, board: pd.DataFrame, mine: str) -> str:
    """Yours against the leader (or, when yours leads, the runner-up), in one sentence."""
    if not results[mine].ok:
        return f"{mine}: {results[mine].status}"
    others = [name for name in board.index[board["status"] == "ok"] if name != mine]
    if not others:
        return f"{mine} raced alone."
    tuned = pd.concat([r.tuned for r in results.values() if r.ok], ignore_index=True)
    return compare(tuned, mine, others[0]).sentence() + "."


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; return its exit status (see the module docstring)."""
    try:
        args = build_parser().parse_args(argv)
        plan = _plan(args)
    except RaceInputError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    _say(f"budget: {plan.budget.describe(plan.budget.since).replace('`', '')}")
    start = time.perf_counter()
    try:
        results = _race(plan, args.fresh)
    except (DataUnavailableError, CorruptDataError) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    board = leaderboard(results)
    shown = readable(board, plan.name)
    cached = sum(result.cached for result in results.values())
    lines = _summary(plan, time.perf_counter() - start, board, cached)
    _say(f"target: {lines[2].removeprefix('target: ')}")
    _say()
    _say(shown.to_string())
    _say("\n* yours. ± : 95% interval over the seeds; vs leader: paired by seed.")
    _say(_versus(results, board, plan.name))
    if not plan.budget.findings:
        _say(f"(the {plan.budget.name} budget is a smoke test, too small to read findings from)")
    _write(plan, results, board, shown, lines)
    _say(f"wrote {plan.out}/: leaderboard.csv, runs.csv, test_accuracy.png, report.html")
    return 0 if results[plan.name].ok else 1


if __name__ == "__main__":
    sys.exit(main())

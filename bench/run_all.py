"""Run every dnalift benchmark, print one table and write ``bench/results/all.json``.

    python bench/run_all.py                      # all sections, Keras backend from the env
    python bench/run_all.py --backend jax        # same, KERAS_BACKEND=jax in a child process
    python bench/run_all.py --quick              # small sizes (smoke run, minutes)
    python bench/run_all.py --only peers engine  # a subset of sections

Sections (see ``bench/README.md`` for what each figure means):

``engine``  Rescale / RevealCancel / genomics_default throughput as a ratio to one plain
            input-gradient pass over the same (sequence, reference) pairs in the same process
            (``bench/bench_engine.py``), on the shipped simulated model and a BPNet-sized model.
``peers``   The same models rebuilt in PyTorch with the same weights (``bench/peers.py``):
            agreement of tangermeme / captum / shap scores with dnalift's Rescale, and
            sequences/s of each tool on the same inputs, references and batch size, torch using
            as many threads as there are cores.
``scale``   End-to-end ``dnalift score`` on 1e4 and 1e5 synthetic genome regions: regions/s, peak
            RSS, share of time outside the engine (``bench/bench_score.py``).

Timings are best-of-``--repeats`` after one warm-up call; a missing piece (a peer that is not
installed, a helper module not there yet) is recorded in the JSON as ``{"skipped": reason}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import traceback
import warnings
from pathlib import Path

from dnalift.fileio import write_text

import numpy as np

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
SIMULATED_MODEL = ROOT / "data" / "simulated" / "model.h5"
SECTIONS = ("engine", "peers", "scale")
BACKENDS = ("tensorflow", "jax", "torch")

if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))


# ---------------------------------------------------------------------------------------------
# Machine description
# ---------------------------------------------------------------------------------------------

def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (platform.processor() as a fallback)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cores() -> int:
    """Cores this process may run on (affinity mask), else ``os.cpu_count()``."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


def accelerator(backend: str) -> str:
    """The device the Keras backend computes on, in words ("CPU" when no GPU is visible)."""
    try:
        if backend == "tensorflow":
            import tensorflow as tf
            gpus = tf.config.list_physical_devices("GPU")
            if gpus:
                details = tf.config.experimental.get_device_details(gpus[0])
                return f"GPU: {details.get('device_name', gpus[0].name)} x{len(gpus)}"
        elif backend == "torch":
            import torch
            if torch.cuda.is_available():
                return f"GPU: {torch.cuda.get_device_name(0)} x{torch.cuda.device_count()}"
        elif backend == "jax":
            import jax
            dev = jax.devices()[0]
            if dev.platform != "cpu":
                return f"{dev.platform.upper()}: {dev.device_kind} x{len(jax.devices())}"
    except Exception as exc:  # noqa: BLE001 - describing, not computing
        return f"CPU (device query failed: {exc})"
    return "CPU"


def machine() -> dict:
    """CPU, cores, Keras backend, device and library versions."""
    import keras
    from peers import versions
    backend = keras.backend.backend()
    return {
        "cpu": cpu_model(),
        "cores": usable_cores(),
        "os_cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_1_5_15": [round(v, 2) for v in os.getloadavg()],
        "keras_backend": backend,
        "device": accelerator(backend),
        "versions": versions(("dnalift", "numpy", "tensorflow", "keras", "jax", "torch",
                              "captum", "tangermeme", "shap")),
    }


# ---------------------------------------------------------------------------------------------
# Models and inputs
# ---------------------------------------------------------------------------------------------

def benchmark_models() -> dict:
    """``{name: keras.Model}``: the shipped simulated model and the BPNet-sized model of
    ``bench/models.py`` (the one the engine section times).

    A model that cannot be had is reported as a string saying why.
    """
    from dnalift.deeplift import load_model
    from models import bpnet_like
    out: dict = {}
    try:
        out["simulated"] = load_model(str(SIMULATED_MODEL))
    except Exception as exc:  # noqa: BLE001
        out["simulated"] = f"not available: {exc}"
    out["bpnet"] = bpnet_like()
    return out


def _has_maxpool(model) -> bool:
    return any("MaxPooling" in type(layer).__name__ for layer in model._flatten_layers())


def random_inputs(n: int, length: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` seeded random one-hot sequences ``(n, L, 4)`` and their ``k`` dinucleotide
    shuffles ``(n, k, L, 4)`` (dnalift.references)."""
    from dnalift.references import dinucleotide_shuffle_references
    rng = np.random.default_rng(seed)
    x = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (n, length))]
    return x, dinucleotide_shuffle_references(x, k=k, seed=seed)


# ---------------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------------

def section_engine(args) -> dict:
    """Engine modes vs one plain gradient pass (delegates to bench/bench_engine.py, which
    builds the simulated-like and BPNet-like models of bench/models.py)."""
    try:
        import bench_engine
    except ImportError as exc:
        return {"skipped": f"bench/bench_engine.py not available ({exc})"}
    import keras
    sizes = {"simulated": (8, 80), "bpnet": (2, 20)} if args.quick else None
    rows = bench_engine.run(keras.backend.backend(), sizes=sizes, k=args.k,
                            repeats=args.repeats, seed=args.seed)
    for r in rows:
        r["sequences_per_s"] = r["sequences"] / r["seconds"]
    return {"rows": rows, "targets": {"rescale": 1.3, "revealcancel": 2.5}}


def _timed_tool(name: str, fn, n_seqs: int, repeats: int) -> dict:
    from peers import seconds_per_run
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            seconds = seconds_per_run(fn, repeats=repeats)
    except Exception as exc:  # noqa: BLE001 - a peer failing is a result to record
        return {"tool": name, "error": f"{type(exc).__name__}: {exc}".strip()[:2000]}
    return {"tool": name, "seconds": round(seconds, 4), "n_sequences": n_seqs,
            "sequences_per_s": round(n_seqs / seconds, 2)}


def _agreement(ours, theirs) -> dict:
    from peers import relative_error
    out = {"actual_rel_err": relative_error(theirs.actual, ours.actual)}
    if theirs.hypothetical is not None:
        out["hypothetical_rel_err"] = relative_error(theirs.hypothetical, ours.hypothetical)
    return out


def keras_gradient_runner(model, x: np.ndarray, refs: np.ndarray, target: int,
                          batch_size: int):
    """``fn()``: plain input gradient of output ``target`` (post-activation, as the model is)
    over the rows a DeepLIFT pass needs -- each sequence once per reference plus the
    references, ``batch_size`` pairs per step -- compiled for the active Keras backend. The
    floor for dnalift, as ``peers.torch_gradient_pass`` is for the torch tools."""
    import keras
    n, k = refs.shape[:2]
    rows = [np.concatenate([np.repeat(x, k, axis=0)[lo:lo + batch_size],
                            refs.reshape(n * k, *refs.shape[2:])[lo:lo + batch_size]])
            for lo in range(0, n * k, batch_size)]
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function(reduce_retracing=True)
        def grad(batch):
            with tf.GradientTape() as tape:
                tape.watch(batch)
                total = tf.reduce_sum(model(batch, training=False)[:, target])
            return tape.gradient(total, batch)
        return lambda: [grad(tf.constant(b)).numpy() for b in rows]
    if backend == "jax":
        import jax
        tv = [v.value for v in model.trainable_variables]
        ntv = [v.value for v in model.non_trainable_variables]

        def total(batch):
            y, _ = model.stateless_call(tv, ntv, batch, training=False)
            return y[:, target].sum()
        grad = jax.jit(jax.grad(total))
        return lambda: [np.asarray(grad(b)) for b in rows]
    import torch

    def torch_grad():
        out = []
        for b in rows:
            t = torch.as_tensor(b, device=keras.backend.get_device() if hasattr(
                keras.backend, "get_device") else None).requires_grad_()
            (g,) = torch.autograd.grad(model(t, training=False)[:, target].sum(), t)
            out.append(g.detach().cpu().numpy())
        return out
    return torch_grad


def _dnalift_runner(model, x, refs, target: int, batch_size: int):
    """``fn() -> PeerScores`` running dnalift's Rescale (max pool: the peers' rule), or the
    reason it cannot run."""
    import peers
    try:
        from dnalift import deeplift
        # fused rules: the throughput of a long job (backend.worth_fusing), whatever the
        # size of the timed calls
        engine = deeplift.DeepLift(model, mode="rescale", maxpool="rescale", tasks=[target],
                                   batch_size=batch_size, fuse=True)
    except Exception as exc:  # noqa: BLE001
        return f"dnalift engine not available: {type(exc).__name__}: {exc}"

    def ours(lo: int = 0, hi: int | None = None):
        att = engine.attribute(x[lo:hi], refs[lo:hi])
        return peers.PeerScores(np.asarray(att.hypothetical)[:, 0], np.asarray(att.actual)[:, 0])
    return ours


def peers_for_model(name: str, model, args) -> dict:
    """Agreement and throughput of dnalift and each peer on one model (target = output 0)."""
    import peers
    length = int(model.input_shape[1])
    # the same number of bases per timing for every model (64 x 200 bp by default)
    n = max(4, args.n_seqs * 200 // length)
    if args.quick:
        n = max(4, n // 8)
    n_shap = min(n, args.n_shap)
    x, refs = random_inputs(n, length, args.k, seed=args.seed)
    bs, target = args.batch_size, 0
    report: dict = {"model": name, "input_length": length, "n_sequences": n, "k": args.k,
                    "batch_size_pairs": bs, "target": target}
    ours = _dnalift_runner(model, x, refs, target, bs)
    try:
        rebuilt = peers.torch_from_keras(model)
        peers.set_torch_threads(usable_cores())
        import torch
        report["torch_threads"] = torch.get_num_threads()
        check = peers.torch_forward(rebuilt, x[:8])
        report["rebuild_max_abs_logit_diff"] = float(
            np.abs(check - peers.keras_logits(model, x[:8])).max())
    except Exception as exc:  # noqa: BLE001
        rebuilt = None
        report["rebuild_error"] = f"{type(exc).__name__}: {exc}"

    runners: dict = {}  # tool -> (fn, number of sequences it scores)
    floors = {"keras plain gradient (floor for dnalift)":
              (keras_gradient_runner(model, x, refs, target, bs), n)}
    if rebuilt is not None:
        floors["torch plain gradient (floor for torch peers)"] = (
            lambda: peers.torch_gradient_pass(rebuilt, x, refs, target=target, batch_size=bs), n)
    if callable(ours):
        runners["dnalift rescale"] = (ours, n)
    else:
        report["dnalift_error"] = ours
    if rebuilt is not None:
        runners["tangermeme deep_lift_shap"] = (lambda: peers.tangermeme_scores(
            rebuilt, x, refs, target=target, batch_size=bs), n)
        if _has_maxpool(model):
            # like with like: tangermeme with dnalift's max-pool rule plugged in
            runners["tangermeme + dnalift maxpool rule"] = (lambda: peers.tangermeme_scores(
                rebuilt, x, refs, target=target, batch_size=bs, maxpool="rescale"), n)
            report["maxpool_note"] = ("native peer rows use the peers' own max-pool rule (all "
                                      "of the pooled difference to the argmax of input or "
                                      "reference), which differs from dnalift's; compare "
                                      "with the 'tangermeme + dnalift maxpool rule' row")
        runners["captum DeepLift (paired batches)"] = (lambda: peers.captum_paired_scores(
            rebuilt, x, refs, target=target, batch_size=bs), n)
        runners["captum DeepLiftShap (per sequence)"] = (lambda: peers.captum_scores(
            rebuilt, x, refs, target=target), n)
    runners["shap DeepExplainer (Keras)"] = (lambda: peers.shap_scores(
        model, x[:n_shap], refs[:n_shap], target=target), n_shap)
    if callable(ours) and n_shap != n:
        runners["dnalift rescale (shap subset)"] = (lambda: ours(0, n_shap), n_shap)

    reference = ours() if callable(ours) else None
    agreement: dict = {}
    among_peers: dict = {}  # vs tangermeme's own scores
    native = None
    for tool, (fn, _) in runners.items():
        if tool.startswith("dnalift"):
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                scores = fn()
        except Exception as exc:  # noqa: BLE001 - a peer failing is a result to record
            agreement[tool] = {"error": "".join(
                traceback.format_exception_only(type(exc), exc)).strip()[:2000]}
            continue
        if tool == "tangermeme deep_lift_shap":
            native = scores
        elif native is not None and not tool.startswith("tangermeme"):
            # peers with the same (native) max-pool rule against each other
            k = len(scores.actual)
            among_peers[tool] = _agreement(peers.PeerScores(
                native.hypothetical[:k], native.actual[:k]), scores)
        if reference is None:
            agreement[tool] = {"skipped": "no dnalift scores to compare with"}
            continue
        k = len(scores.actual)
        agreement[tool] = _agreement(peers.PeerScores(
            reference.hypothetical[:k], reference.actual[:k]), scores)
    timing = []
    for tool, (fn, count) in {**floors, **runners}.items():
        if "error" in agreement.get(tool, {}):
            continue
        repeats = 1 if tool.startswith("shap") else args.repeats
        timing.append(_timed_tool(tool, fn, count, repeats))
        print(f"[run_all] {name}: {tool}: {timing[-1].get('sequences_per_s', 'error')} seq/s",
              file=sys.stderr, flush=True)
    report["agreement_vs_dnalift"] = agreement
    report["agreement_vs_tangermeme"] = among_peers
    report["throughput"] = timing
    fastest_peer = max((r for r in timing if "sequences_per_s" in r
                        and r["tool"].split()[0] in ("tangermeme", "captum")
                        and "dnalift" not in r["tool"] and r["n_sequences"] == n),
                       key=lambda r: r["sequences_per_s"], default=None)
    mine = next((r for r in timing if r["tool"] == "dnalift rescale" and "sequences_per_s" in r),
                None)
    if fastest_peer:
        report["fastest_peer"] = fastest_peer["tool"]
    if fastest_peer and mine:
        report["dnalift_vs_fastest_peer"] = round(
            mine["sequences_per_s"] / fastest_peer["sequences_per_s"], 3)
    return report


def section_peers(args) -> dict:
    """Peer comparison on every benchmark model."""
    try:
        import peers  # noqa: F401
    except ImportError as exc:
        return {"skipped": f"{exc}"}
    out = {}
    for name, model in benchmark_models().items():
        if isinstance(model, str):
            out[name] = {"skipped": model}
            continue
        try:
            out[name] = peers_for_model(name, model, args)
        except Exception as exc:  # noqa: BLE001
            out[name] = {"error": "".join(traceback.format_exception(exc))[-3000:]}
    return out


def section_scale(args) -> dict:
    """End-to-end ``dnalift score`` at genome scale (delegates to bench/bench_score.py)."""
    try:
        import bench_score
    except ImportError as exc:
        return {"skipped": f"bench/bench_score.py not available ({exc})"}
    sizes = (1000,) if args.quick else tuple(args.sizes)
    return bench_score.run_benchmark(sizes, k=args.k, batch_size=args.score_batch_size)


# ---------------------------------------------------------------------------------------------
# Table
# ---------------------------------------------------------------------------------------------

def _fmt(value, digits: int = 3) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def table_rows(report: dict) -> list[tuple[str, str, str]]:
    """``(figure, value, target)`` rows for the printed summary."""
    rows: list[tuple[str, str, str]] = []
    m = report["machine"]
    rows.append(("machine", f"{m['cpu']}, {m['cores']} cores, {m['keras_backend']}, "
                 f"{m['device']}", ""))
    eng = report.get("engine", {})
    if "skipped" in eng or "error" in eng:
        rows.append(("engine", eng.get("skipped") or "error (see JSON)", ""))
    targets = {"rescale": "<= 1.3", "revealcancel": "<= 2.5"}
    for r in eng.get("rows", []):
        rows.append((f"engine {r['model']} {r['mode']}",
                     f"{_fmt(r['ratio'])} x gradient, {_fmt(r['sequences_per_s'])} seq/s "
                     f"({r['pairs']} pairs, batch {r['batch_pairs']})",
                     targets.get(r["mode"], "")))
    peers_ = report.get("peers", {})
    if "skipped" in peers_:
        rows.append(("peers", peers_["skipped"], ""))
    for model, res in peers_.items():
        if not isinstance(res, dict) or "skipped" in res or "error" in res:
            if isinstance(res, dict):
                rows.append((f"peers {model}", res.get("skipped") or "error (see JSON)", ""))
            continue
        for tool, agr in res.get("agreement_vs_dnalift", {}).items():
            if tool.startswith("dnalift"):
                continue
            if "error" in agr or "skipped" in agr:
                why = agr.get("error") or agr["skipped"]
                rows.append((f"{model}: {tool} agreement", why.splitlines()[-1].strip()[:70],
                             ""))
                continue
            txt = f"actual {_fmt(agr['actual_rel_err'], 2)}"
            if "hypothetical_rel_err" in agr:
                txt += f", hyp {_fmt(agr['hypothetical_rel_err'], 2)}"
            like = "maxpool_note" not in res or "dnalift maxpool" in tool
            rows.append((f"{model}: {tool} rel. err vs dnalift", txt,
                         "<= 1e-4" if like else "(max-pool rule differs)"))
        for tool, agr in res.get("agreement_vs_tangermeme", {}).items():
            txt = f"actual {_fmt(agr['actual_rel_err'], 2)}"
            if "hypothetical_rel_err" in agr:
                txt += f", hyp {_fmt(agr['hypothetical_rel_err'], 2)}"
            rows.append((f"{model}: {tool} rel. err vs tangermeme", txt, "<= 1e-4"))
        for r in res.get("throughput", []):
            value = (f"{_fmt(r['sequences_per_s'])} seq/s (n={r['n_sequences']})"
                     if "sequences_per_s" in r else r.get("error", "")[:70])
            rows.append((f"{model}: {r['tool']}", value, ""))
        if "dnalift_vs_fastest_peer" in res:
            rows.append((f"{model}: dnalift / fastest peer ({res['fastest_peer']})",
                         _fmt(res["dnalift_vs_fastest_peer"]), ">= 1"))
    scale = report.get("scale", {})
    if "skipped" in scale or "error" in scale:
        rows.append(("scale", scale.get("skipped") or "error (see JSON)", ""))
    for r in scale.get("results", []):
        n = r["n_regions"]
        rows.append((f"score {n} regions: regions/s", _fmt(r["regions_per_s"]), ""))
        rows.append((f"score {n} regions: peak RSS MiB", _fmt(r["peak_rss_mib"]), "flat in N"))
        rows.append((f"score {n} regions: outside-engine share",
                     _fmt(r["outside_engine_share"]), "<= 0.15"))
    return rows


def print_table(report: dict, stream=sys.stdout) -> None:
    rows = table_rows(report)
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    print(f"{'figure':<{w0}}  {'value':<{w1}}  target", file=stream)
    print("-" * (w0 + w1 + 10), file=stream)
    for figure, value, target in rows:
        print(f"{figure:<{w0}}  {value:<{w1}}  {target}", file=stream)


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------

def run(args) -> dict:
    """All requested sections in this process; returns the report (also written as JSON)."""
    report: dict = {"command": "python bench/run_all.py " + " ".join(args.argv),
                    "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "machine": machine(),
                    "settings": {"k": args.k, "batch_size_pairs": args.batch_size,
                                 "n_seqs": args.n_seqs, "n_shap": args.n_shap,
                                 "repeats": args.repeats, "seed": args.seed,
                                 "quick": args.quick}}
    funcs = {"engine": section_engine, "peers": section_peers, "scale": section_scale}
    for name in args.only:
        t0 = time.perf_counter()
        try:
            report[name] = funcs[name](args)
        except Exception as exc:  # noqa: BLE001 - keep the other sections
            report[name] = {"error": "".join(traceback.format_exception(exc))[-3000:]}
        if isinstance(report[name], dict):
            report[name]["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
        print(f"[run_all] {name}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return report


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", choices=BACKENDS,
                   help="Keras backend (sets KERAS_BACKEND and reruns in a child process)")
    p.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    p.add_argument("--k", type=int, default=10, help="dinucleotide shuffles per sequence")
    p.add_argument("--batch-size", type=int, default=256,
                   help="(sequence, reference) pairs per pass, for every tool")
    p.add_argument("--n-seqs", type=int, default=64, help="sequences per peer timing")
    p.add_argument("--n-shap", type=int, default=8, help="sequences for shap (slow)")
    p.add_argument("--repeats", type=int, default=3, help="best-of repeats per timing")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000],
                   help="region counts for the scale section")
    p.add_argument("--score-batch-size", type=int, default=1024,
                   help="pairs per engine batch in the scale section")
    p.add_argument("--out", type=Path, default=RESULTS / "all.json")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.argv = [a for a in argv if a != "--child"]
    return args


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse(argv)
    if args.backend and not args.child:
        env = {**os.environ, "KERAS_BACKEND": args.backend}
        return subprocess.call([sys.executable, __file__, *argv, "--child"], env=env)
    report = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text(args.out, json.dumps(report, indent=2, default=str) + "\n")
    print_table(report)
    print(f"\nJSON: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

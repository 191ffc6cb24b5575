"""fp32 vs int8 and pruned variants, measured in one process, alternating (issue 11).

    python bench/compress.py                        # both jobs
    python bench/compress.py --job mnist --epochs 3 # MNIST-5k CNN (recipes/mnist_cnn.yaml) -> kiln compress
    python bench/compress.py --job bert --threads 1 # BERT-base-width encoder latency

Jobs:
- mnist: trains ``recipes/mnist_cnn.yaml`` (``--epochs`` overrides its 12 to keep the bench short),
  then runs the `kiln compress` workflow twice on the run: ``--quantize int8`` (every int8
  backend measured against fp32; written even when slower, with the table) and ``--prune 0.5
  --structured --epochs 1``. The tables are the workflow's own (test split, file size,
  parameters, latency at batch 1 and 32, throughput).
- bert: a BERT-base-width encoder (hidden 768, 4 layers, 12 heads, intermediate 3072, vocabulary
  30522, sequence 128) with random weights — latency only (agreement with fp32 is shown; there
  is no task). Batch sizes 1 and 8: batch 32 x 128 tokens takes seconds per call on 2 cores.

Latency on a shared machine is noisy: read the ratio columns (``speedup_*``, fp32 = 1), which
come from rounds that time every variant back to back.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def mnist(args) -> None:
    from kiln.config import load_config
    from kiln.workflows.compress import compress_run
    from kiln.workflows.train import train
    out = Path(args.output or tempfile.mkdtemp(prefix="kiln-bench-compress-"))
    config = load_config(ROOT / "recipes" / "mnist_cnn.yaml", [f"training.epochs={args.epochs}"])
    started = time.perf_counter()
    run = train(config, output_dir=out, verbose=0).run_dir
    print(f"## mnist: trained {run} in {time.perf_counter() - started:.0f} s ({args.epochs} epochs)", flush=True)
    print("\n### --quantize int8", flush=True)
    compress_run(run, quantize="int8", allow_slower=True, rounds=args.rounds, threads=args.threads)
    print("\n### --prune 0.5 --structured --epochs 1", flush=True)
    compress_run(run, prune=0.5, structured=True, epochs=1, rounds=args.rounds, threads=args.threads)


def bert(args) -> None:
    import kiln
    from kiln.compress import Variant, format_table, measure, quantize
    from kiln.workflows.compress import _int8_tensors, _onnx_candidate, _onnx_predict, _safetensors_size, _torch_predict
    threads = args.threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    kiln.utils.set_random_seed(0)
    model = kiln.zoo.bert(vocab_size=30522, num_classes=2, hidden=768, layers=4, heads=12, intermediate=3072,
                          max_length=128, pad_id=None).eval()
    ids = torch.randint(1, 30522, (32, 128), generator=torch.Generator().manual_seed(0))
    x = {"input_ids": ids}
    params = sum(p.numel() for p in model.parameters())
    variants = [Variant("fp32", _torch_predict(model), "torch", params * 4, params)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for backend in ("torch", "torchao"):
            q = quantize(model, "int8", backend=backend)
            # what `kiln compress` would store: int8 Linear weights + scales, everything else fp32
            stored = {**_int8_tensors(model, q.quantized_layers),
                      **{k: v for k, v in model.state_dict().items()
                         if not any(k.startswith(f"{n}.") for n in q.quantized_layers)}}
            variants.append(Variant(f"int8-{backend}", _torch_predict(q.model), backend, _safetensors_size(stored),
                                    params))
        tmp = Path(tempfile.mkdtemp(prefix="kiln-bench-bert-"))
        int8 = _onnx_candidate(model, {"input_ids": ids[:2]}, tmp)
    variants.append(Variant("fp32-onnx", _onnx_predict(tmp / "fp32.onnx", threads), "onnx",
                            (tmp / "fp32.onnx").stat().st_size, params))
    variants.append(Variant("int8-onnx", _onnx_predict(int8, threads), "onnx", int8.stat().st_size, params))
    rows = measure(variants, x, lambda out: {}, rounds=args.rounds, batch_sizes=(1, 8), calls=(3, 1))
    print(f"## bert-base-width encoder (768 x 4 layers, seq 128), {threads} thread(s), {args.rounds} rounds")
    print(format_table(rows), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--job", choices=["mnist", "bert", "all"], default="all")
    parser.add_argument("--epochs", type=int, default=3, help="MNIST training epochs (the recipe says 12)")
    parser.add_argument("--rounds", type=int, default=7, help="alternating timing rounds")
    parser.add_argument("--threads", type=int, help="threads for torch and onnxruntime (default: torch's)")
    parser.add_argument("--output", help="folder for the MNIST runs (default: a temporary folder)")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} default threads; {time.strftime('%Y-%m-%d %H:%M')}")
    if args.job in ("mnist", "all"):
        mnist(args)
    if args.job in ("bert", "all"):
        bert(args)


if __name__ == "__main__":
    main()
